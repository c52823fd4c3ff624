"""The fault run, short: intakes while PostgreSQL restarts, a worker SIGKILLed mid-sweep.

`bench/reliability.py` brings its own throwaway PostgreSQL cluster (it never touches the
server the suite uses), so the run does not depend on the suite's database. It runs
once per CI run, in the PostgreSQL suite; the full run is `make reliability`.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.reliability


def test_no_acknowledged_intake_or_due_warning_is_lost_or_doubled():
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql")):
        pytest.skip("the fault run runs once, in the PostgreSQL suite")
    if not (glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb")):
        if os.environ.get("CI"):
            pytest.fail("the fault run needs PostgreSQL's initdb in CI")
        pytest.skip("no initdb (apt-get install postgresql)")
    done = subprocess.run(  # noqa: S603 - fixed command line
        [
            sys.executable,
            "bench/reliability.py",
            "--intakes", "600", "--clients", "8", "--retry-share", "0.1",
            "--restarts", "1", "--sweep-tickets", "100", "--deadline", "120", "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    intake, sweep = report["intake"], report["sweep"]
    print(json.dumps(report, ensure_ascii=False))  # the figures, for the CI log

    assert len(intake["restarts"]) == 1
    assert intake["acknowledged"] == intake["contacts"] == 600
    assert intake["stored"] == 600 and intake["tickets"] == 600
    assert intake["lost"] == 0 and intake["duplicates"] == 0
    assert intake["acknowledged_with_another_number"] == 0
    assert intake["statuses"].get("500", 0) == 0, "a database restart must answer 503, not 500"

    assert 0 < sweep["warned_at_kill"] < sweep["due_clocks"]
    assert sweep["warnings_on_timeline"] == sweep["due_clocks"]
    assert sweep["missing_warnings"] == sweep["duplicate_warnings"] == 0
    assert sweep["duplicate_notifications"] == sweep["warnings_without_notification"] == 0
    assert report["failures"] == []

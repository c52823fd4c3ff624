"""The benchmark table's "met" column: goals are judged on real pages only."""

from complaints.management.benchmarks import Case, Result


def result(status=200, p95=40.0, queries=6):
    case = Case("queue", "agent", "/", 50, 8)
    return Result(case, p50=20.0, p95=p95, rps=50.0, queries=queries, status=status, samples=10)


def test_a_page_within_its_goals_is_met():
    assert result().met == "yes"


def test_a_slow_page_or_too_many_queries_is_not_met():
    assert result(p95=51.0).met == "**no**"
    assert result(queries=9).met == "**no**"


def test_a_redirect_is_never_met_however_fast():
    assert result(status=301, p95=0.1, queries=0).met.startswith("**no**")


def test_the_kb_section_reports_every_query_and_the_goal(db, tmp_path):
    """`bench --only "KB search"` times the bench articles and writes its own section."""
    import io

    from django.core.management import call_command

    from kb import benchmarks as kb_benchmarks

    kb_benchmarks.load_articles(60, log=lambda *_: None)
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n<!-- bench:t-kb -->\nold\n<!-- /bench:t-kb -->\n")
    out = io.StringIO()
    call_command(
        "bench",
        label="t",
        only="KB search",
        no_http=True,
        kb_rounds=2,
        markdown=str(report),
        stdout=out,
    )
    text = report.read_text()
    assert "old" not in text and "### t · KB search" in text
    assert "60 bench articles" in text
    for query in kb_benchmarks.QUERIES:
        assert f"| `{query}` |" in text
    assert "Goal p95 ≤ 20 ms:" in text


def test_intake_and_import_sections_judge_their_goals(db):
    from complaints.management.benchmarks import (
        IntakeResult,
        import_markdown,
        intake_markdown,
    )

    run = {
        "requests": 3300,
        "concurrency": 16,
        "statuses": {"201": 2700, "200": 600},
        "acknowledged_per_second": 45.0,
        "p50_ms": 300.0,
        "p95_ms": 900.0,
        "contacts_with_two_tickets": 0,
    }
    slow = IntakeResult(runs=[run, run], workers=4, threads=2)
    assert not slow.met and "Goal ≥ 300 intakes/s: **no**" in intake_markdown("1M", slow)
    fast = IntakeResult(runs=[{**run, "acknowledged_per_second": 301.0}], workers=4, threads=2)
    assert fast.met and "Goal ≥ 300 intakes/s: yes" in intake_markdown("1M", fast)

    figures = {
        "rows": 100_000,
        "file_bytes": 9 * 1024 * 1024,
        "parse_seconds": 20.0,
        "import_seconds": 35.0,
        "rows_per_second": 2857,
        "new_tickets": 90_000,
        "joined_tickets": 5_000,
        "already_known": 0,
    }
    assert import_markdown("1M", figures).rstrip().endswith("| yes |")
    slower = {**figures, "import_seconds": 45.0}  # check + import over 60 s
    assert import_markdown("1M", slower).rstrip().endswith("| **no** |")
    fewer = {**figures, "rows": 2_000}  # fast, but not the 100k rows the goal names
    assert import_markdown("1M", fewer).rstrip().endswith("| **no** |")

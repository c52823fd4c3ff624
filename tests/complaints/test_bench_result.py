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

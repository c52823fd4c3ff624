"""The sweep case of `manage.py bench` runs and reports (figures: docs/benchmarks.md)."""

from sla import benchmarks
from sla.models import Clock
from tests.factories import make_ticket


def test_sweep_bench_sweeps_the_clocks_due_soonest(
    clock_at, agent, senior, customer, channel, team_a
):
    for _ in range(4):
        make_ticket(customer=customer, channel=channel, team=team_a)
    lines = []
    runs = benchmarks.run_sweeps(few=1, many=3, log=lines.append)
    names = [r.name for r in runs]
    assert names == ["nothing due", "few due (1)", "many due (3)", "right after (nothing left due)"]
    nothing, few, many, after = runs
    assert (nothing.due_clocks, nothing.tickets, nothing.queries) == (0, 0, 1)
    assert few.due_clocks >= 1 and few.tickets >= 1 and few.notified >= 1
    assert many.due_clocks >= 3 and many.tickets >= 1
    assert after.due_clocks == 0
    text = benchmarks.markdown("test", runs)
    assert "| few due (1) |" in text and "Machine:" in text
    assert Clock.objects.filter(warned_level__gt=0).count() >= 3

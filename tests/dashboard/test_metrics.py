"""Every dashboard KPI against the hand-computed world of tests/dashboard/conftest.py.

Past days come from the stored rollups (refreshed first), today (t5) is computed live.
"""

import datetime as dt
from decimal import Decimal

import pytest

from dashboard import rollups, tasks
from dashboard.models import TicketMonth
from dashboard.selectors import Filters, Lookups, dashboard, split_months
from sla.management.commands.sla_schedule import SCHEDULES
from tests.dashboard.conftest import FIRST, LAST, NOW


def board(**filters):
    options = {"first": FIRST, "last": LAST} | filters
    return dashboard(Filters(**options), Lookups.load())


@pytest.fixture
def rolled_up(world):
    rollups.refresh(first=dt.date(2025, 11, 1), last=LAST)
    return world


def pct(rate):
    return None if rate.percent is None else round(rate.percent, 1)


def test_volume_by_day_with_last_year(rolled_up):
    b = board()
    # Received in range: t1, t2 (11-20; t1 at 00:30 local is still 11-19 in UTC), t3 (11-21),
    # t4, t8 (11-22), t5 (11-23, live) = 6. Merged t6 and t7 (11-19 23:30) are left out.
    assert b.received == 6
    assert [(v.label, v.received, v.previous) for v in b.volume] == [
        ("2026-11-20", 2, 0),
        ("2026-11-21", 1, 1),  # 2025-11-21
        ("2026-11-22", 2, 0),
        ("2026-11-23", 1, 1),  # 2025-11-23
    ]
    # Last year: 2025-11-21 and 2025-11-23 (2025-11-19 is outside) → 2; (6 − 2) / 2 = +200 %.
    assert b.previous_received == 2
    assert b.yoy_percent == pytest.approx(200.0)


def test_volume_by_week_and_month(rolled_up):
    weeks = board(granularity="week").volume
    # 11-20..22 are Fri–Sun of ISO week 47 (Monday 11-16); 11-23 is the Monday of week 48.
    assert [(v.label, v.received, v.previous) for v in weeks] == [
        ("2026-W47", 5, 1),
        ("2026-W48", 1, 1),
    ]
    months = board(granularity="month").volume
    assert [(v.label, v.received, v.previous) for v in months] == [("2026-11", 6, 2)]


def test_channel_mix_and_category_pareto(rolled_up):
    b = board()
    # 微信公众号: t1, t2, t8, t5 = 4 of 6 = 66.7 %; App: t3, t4 = 2 = 33.3 %.
    assert [(s.label, s.count, round(s.percent, 1)) for s in b.channels] == [
        ("微信公众号", 4, 66.7),
        ("App", 2, 33.3),
    ]
    # 物流配送 t1 t2 t5 = 3 (50 %, cum 50); 安装延误 t3 t8 = 2 (33.3 %, cum 83.3);
    # not classified t4 = 1 (16.7 %, cum 100).
    assert [(s.label, s.count, round(s.percent, 1), round(s.cumulative, 1)) for s in b.pareto] == [
        ("物流配送", 3, 50.0, 50.0),
        ("售后服务/安装延误", 2, 33.3, 83.3),
        ("Not classified", 1, 16.7, 100.0),
    ]


def test_sla_attainment(rolled_up):
    rates = {s.stage: s.rate for s in board().sla}
    # First response: on time t1, t5 (live); late t2 (met after due), t3 (overdue, running);
    # t4 paused → pending, not counted. 2 / 4 = 50 %.
    assert (rates["first_response"].numerator, rates["first_response"].denominator) == (2, 4)
    assert pct(rates["first_response"]) == 50.0
    # Assessment: t1 and t2 on time → 2 / 2.
    assert pct(rates["assessment"]) == 100.0
    # Solution: t1 met late → 0 / 1.
    assert (rates["solution"].numerator, rates["solution"].denominator) == (0, 1)
    # Closure: t1 still within time → nothing decided.
    assert rates["closure"].percent is None


def test_repeat_fcr_completeness_and_handling_time(rolled_up):
    b = board()
    # Repeats: t2 (of a 2025 ticket) and t4 (of t1) → 2 / 6 = 33.3 %.
    assert (b.repeat.numerator, b.repeat.denominator) == (2, 6)
    # Resolved: t1, t2, t3. First contact: only t1 (t2 had 2 contacts, t3 was reopened) → 1 / 3.
    assert (b.first_contact.numerator, b.first_contact.denominator) == (1, 3)
    # Four elements: t1 (reference), t2 (attachment); t3 has no evidence → 2 / 3 = 66.7 %.
    assert (b.completeness.numerator, b.completeness.denominator) == (2, 3)
    assert pct(b.completeness) == 66.7
    # Handling: 4 h + 24 h + 2 h over 3 resolved = 10 h.
    assert b.handling_hours == pytest.approx(10.0)


def test_satisfaction_and_nps(rolled_up):
    b = board()
    dims = {d.name: d for d in b.dimensions}
    # Answered surveys in range: t1 (5,4,3,5,4 | 10), t2 (4,4,2,3,5 | 9), t3 (2,3,4,1,3 | 3).
    assert dims["efficiency"].average == pytest.approx(11 / 3)  # 5+4+2
    assert dims["attitude"].average == pytest.approx(11 / 3)  # 4+4+3
    assert dims["clarity"].average == pytest.approx(3.0)  # 3+2+4
    assert dims["resolution"].average == pytest.approx(3.0)  # 5+3+1
    assert dims["empathy"].average == pytest.approx(4.0)  # 4+5+3
    # Satisfied (4 or 5): efficiency 5,4 → 2/3; clarity only 4 → 1/3; resolution only 5 → 1/3.
    assert pct(dims["efficiency"].satisfied) == 66.7
    assert pct(dims["clarity"].satisfied) == 33.3
    assert pct(dims["resolution"].satisfied) == 33.3
    assert all(d.answers == 3 for d in b.dimensions)
    # NPS: promoters t1 (10), t2 (9); detractor t3 (3) → (2 − 1) / 3 = 33.3.
    assert (b.promoters, b.detractors, b.nps_responses) == (2, 1, 3)
    assert round(b.nps, 1) == 33.3


def test_department_task_response_times(rolled_up):
    depts = {d.name: d for d in board().departments}
    # 物流部: t1 task claimed after 1 h (in time, done after 10 h), t2 task after 6 h (late).
    logistics = depts["物流部"]
    assert (logistics.opened, logistics.responded, logistics.completed) == (2, 2, 1)
    assert logistics.response_hours == pytest.approx(3.5)  # (1 + 6) / 2
    assert pct(logistics.on_time) == 50.0
    assert logistics.completion_hours == pytest.approx(10.0)
    # 技术部: t3 task not claimed yet; the cancelled t1 task and merged t6 task are left out.
    tech = depts["技术部"]
    assert (tech.opened, tech.responded, tech.completed) == (1, 0, 0)
    assert tech.response_hours is None and tech.on_time.percent is None


def test_compensation_cost_by_kind(rolled_up):
    b = board()
    # Coupon: t1 10.00 granted + t2 5.50 approved; refund: t3 100.00 + t5 30.00 (today).
    # Requested, rejected, merged (t6) and out-of-range (t7) amounts are left out.
    assert [(c.kind, c.count, c.amount) for c in b.compensation] == [
        ("coupon", 2, Decimal("15.50")),
        ("refund", 2, Decimal("130.00")),
    ]
    assert b.compensation_total == Decimal("145.50")
    assert b.compensation_count == 4


def test_filters_by_team_channel_and_category(rolled_up):
    w = rolled_up
    team_a = board(team_id=w.team_a.pk)
    # Team A: t1, t2, t5; repeat t2 → 1 / 3; resolved t1, t2 → FCR 1 / 2, both complete.
    assert team_a.received == 3
    assert (team_a.repeat.numerator, team_a.repeat.denominator) == (1, 3)
    assert (team_a.first_contact.numerator, team_a.first_contact.denominator) == (1, 2)
    assert team_a.previous_received == 1  # 2025-11-21 was team A
    app = board(channel_id=w.app.pk)
    assert app.received == 2 and [s.label for s in app.pareto] == [
        "Not classified",
        "售后服务/安装延误",
    ]
    # The root 售后服务 stands for its child 安装延误: t3, t8.
    root = w.install.parent
    after_sales = board(category_ids=Lookups.load().roots[root.pk])
    assert after_sales.received == 2
    assert [c.kind for c in after_sales.compensation] == ["refund"]


def test_today_is_live_without_a_refresh(world):
    # Nothing rolled up: only today's ticket t5 (and its refund) is there.
    b = board()
    assert b.received == 1
    assert [(c.kind, c.amount) for c in b.compensation] == [("refund", Decimal("30.00"))]
    assert board(first=LAST, last=LAST).received == 1


def test_refresh_replaces_the_days_rows_and_the_schedule_runs_it(world, settings):
    settings.CLOSELOOP_DASHBOARD_REFRESH_DAYS = 5
    first = tasks.refresh_recent()
    again = tasks.refresh_recent()  # idempotent: same rows, not twice as many
    assert first == again
    # 11-19..11-23: t7 (11-19), t1+t2 (same key), t3, t4, t8, t5 → 6 key rows.
    assert first["rows"] == 6
    assert board().received == 6
    assert "dashboard.tasks.refresh_recent" in {func for func, _minutes in SCHEDULES.values()}


def test_empty_range_has_no_rates(world):
    b = board(first=dt.date(2026, 1, 1), last=dt.date(2026, 1, 31))
    assert b.received == 0 and b.repeat.percent is None and b.nps is None
    assert b.handling_hours is None and all(s.rate.percent is None for s in b.sla)


def test_whole_months_come_from_the_month_rollups(world):
    from tests.dashboard.conftest import _ticket, at

    w = world
    october = _ticket(at(10, 10, 15), w.app, w.install, w.team_b, repeat_of=w.t1)
    _ticket(at(10, 31, 23, 30), w.wechat, w.logistics, w.team_a)
    _ticket(at(11, 1, 0, 10), w.wechat, w.logistics, w.team_a)
    rollups.refresh(first=dt.date(2026, 10, 1), last=LAST)
    assert TicketMonth.objects.filter(day=dt.date(2026, 10, 1)).count() == 2
    # October alone is one whole month: the month rows answer.
    october_only = board(first=dt.date(2026, 10, 1), last=dt.date(2026, 10, 31))
    assert october_only.received == 2
    assert (october_only.repeat.numerator, october_only.repeat.denominator) == (1, 2)
    assert [(s.label, s.count) for s in october_only.channels] == [("App", 1), ("微信公众号", 1)]
    # 10-05 … 11-23: days 10-05…10-31 and 11-01…11-22 from the day rows, no whole month;
    # 10-01 … 11-23: October from the month rows plus November's days: 2 + 1 (11-01)
    # + t7 (11-19) + the six of the world = 10.
    assert board(first=dt.date(2026, 10, 5), last=LAST).received == 10
    whole = board(first=dt.date(2026, 10, 1), last=LAST)
    assert whole.received == 10
    assert [
        (v.label, v.received)
        for v in board(first=dt.date(2026, 10, 1), last=LAST, granularity="month").volume
    ] == [("2026-10", 2), ("2026-11", 8)]
    assert october.category_id == w.install.pk


@pytest.mark.parametrize(
    "first, last, months, days",
    [
        # A whole month and the days around it.
        ("2026-09-20", "2026-11-05", ("2026-10-01", "2026-10-01"), True),
        # Exactly whole months: no day rows.
        ("2026-01-01", "2026-03-31", ("2026-01-01", "2026-03-01"), False),
        # Inside one month: day rows only.
        ("2026-11-02", "2026-11-23", None, True),
        # A whole December across the year end.
        ("2025-11-24", "2026-01-03", ("2025-12-01", "2025-12-01"), True),
    ],
)
def test_split_months(first, last, months, days):
    got_months, got_days = split_months(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    expected = months and tuple(dt.date.fromisoformat(m) for m in months)
    assert got_months == expected
    assert (got_days is not None) == days


def test_stored_sums_are_reused_until_the_next_refresh(rolled_up, django_assert_max_num_queries):
    from tests.dashboard.conftest import _ticket, at

    w = rolled_up
    assert board().received == 6
    _ticket(at(11, 21, 15), w.app, w.install, w.team_b)  # a past day, not rolled up yet
    with django_assert_max_num_queries(9):  # 3 lookups, the state, 5 live: no rollup read
        assert board().received == 6
    rollups.refresh(first=FIRST, last=LAST)
    assert board().received == 7


def test_the_django_q_scheduler_refreshes_the_rollups(world):
    from unittest import mock

    from django.core.management import call_command
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from dashboard.models import RollupState

    call_command("sla_schedule")
    Schedule.objects.exclude(name="dashboard-rollup").delete()
    Schedule.objects.update(next_run=NOW - dt.timedelta(minutes=1))  # due
    with mock.patch("django_q.conf.Conf.SYNC", True):
        scheduler(broker=get_broker())
    assert RollupState.objects.get().version == 1
    assert board().received == 6  # past days stored, today live


def test_rollup_command_builds_history(world, capsys):
    from django.core.management import CommandError, call_command

    call_command("dashboard_rollup")  # every day from the first ticket (2025-11-19) to today
    assert "Rolled up 2025-11-19..2026-11-23" in capsys.readouterr().out
    assert board().received == 6 and board().previous_received == 2
    with pytest.raises(CommandError):
        call_command("dashboard_rollup", "--first", "2026-11-23", "--last", "2026-11-01")
    with pytest.raises(CommandError):
        call_command("dashboard_rollup", "--days", "0")

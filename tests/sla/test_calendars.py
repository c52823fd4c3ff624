"""Working-time arithmetic: 24×7 and business hours across 国庆 and adjusted working days."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sla import calendars
from sla.calendars import (
    ALWAYS,
    BusinessCalendar,
    add_business_time,
    business_time_between,
    is_working_day,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = BusinessCalendar(kind="business")  # 09:00–18:00 on Chinese working days
PLAIN_WEEK = BusinessCalendar(kind="business", chinese_holidays=False)


def at(*args):
    return dt.datetime(*args, tzinfo=SHANGHAI)


def hours(n):
    return dt.timedelta(hours=n)


def test_24x7_is_plain_addition():
    start = at(2026, 9, 30, 16, 0)
    assert add_business_time(start, hours(72), ALWAYS) == start + hours(72)
    assert business_time_between(start, start + hours(5), ALWAYS) == hours(5)


def test_national_day_holiday_is_skipped():
    # Wed 30 Sep 16:00 + 4 h: 2 h that day, then 1–7 Oct are holidays, 8 Oct works.
    assert add_business_time(at(2026, 9, 30, 16), hours(4), OFFICE) == at(2026, 10, 8, 11)


def test_adjusted_working_saturday_counts():
    # Sat 10 Oct 2026 is a working day (调休) after 国庆: Fri 17:00 + 3 h → Sat 11:00.
    assert is_working_day(dt.date(2026, 10, 10), OFFICE)
    assert add_business_time(at(2026, 10, 9, 17), hours(3), OFFICE) == at(2026, 10, 10, 11)
    # A plain Monday–Friday calendar does not know it: Mon 12 Oct 11:00.
    assert add_business_time(at(2026, 10, 9, 17), hours(3), PLAIN_WEEK) == at(2026, 10, 12, 11)


def test_adjusted_working_sunday_before_the_holiday():
    assert is_working_day(dt.date(2026, 9, 20), OFFICE)
    assert not is_working_day(dt.date(2026, 9, 20), PLAIN_WEEK)


def test_weekday_holiday_is_not_a_working_day():
    assert not is_working_day(dt.date(2026, 10, 1), OFFICE)
    assert is_working_day(dt.date(2026, 10, 1), PLAIN_WEEK)


def test_start_outside_hours_waits_for_the_next_opening():
    assert add_business_time(at(2026, 10, 12, 7), hours(1), OFFICE) == at(2026, 10, 12, 10)
    # Friday night: nothing counts until Monday 09:00.
    assert add_business_time(at(2026, 11, 20, 20), hours(1), OFFICE) == at(2026, 11, 23, 10)


def test_a_target_ending_exactly_at_closing_time():
    assert add_business_time(at(2026, 11, 23, 9), hours(9), OFFICE) == at(2026, 11, 23, 18)
    assert add_business_time(at(2026, 11, 23, 9), hours(10), OFFICE) == at(2026, 11, 24, 10)


def test_five_day_closure_target_in_business_time():
    # 120 h of working time is 13⅓ working days of 9 h.
    due = add_business_time(at(2026, 11, 23, 9), hours(120), OFFICE)
    assert business_time_between(at(2026, 11, 23, 9), due, OFFICE) == hours(120)
    assert due == at(2026, 12, 10, 12)


def test_business_time_between_skips_the_holiday():
    assert business_time_between(at(2026, 9, 30, 17), at(2026, 10, 8, 10), OFFICE) == hours(2)
    assert business_time_between(at(2026, 10, 8, 10), at(2026, 9, 30, 17), OFFICE) == hours(0)


@pytest.mark.parametrize("minutes", [1, 59, 240, 1440, 4320, 7200])
def test_round_trip(minutes):
    start = at(2026, 9, 28, 10, 17)
    due = add_business_time(start, dt.timedelta(minutes=minutes), OFFICE)
    assert business_time_between(start, due, OFFICE) == dt.timedelta(minutes=minutes)


def test_a_year_the_package_does_not_know_falls_back_to_weekdays():
    assert is_working_day(dt.date(2099, 10, 1), OFFICE)  # a Thursday
    assert not is_working_day(dt.date(2099, 10, 3), OFFICE)  # a Saturday


@pytest.fixture
def unknown_years_forgotten(monkeypatch):
    monkeypatch.setattr(calendars, "_unknown_years", set())


def test_a_deadline_past_the_known_years_uses_weekdays_and_warns_once(
    unknown_years_forgotten, caplog
):
    # chinese-calendar 1.11.0 knows holidays through 2026. Thu 31 Dec 2026 16:00 + 24 h
    # of working time: 2 h on the 31st, then 2027 by the weekday rule (1 Jan 2027 a
    # Friday, counted as a working day for want of the schedule), Mon 4 Jan, Tue 5 Jan.
    start = at(2026, 12, 31, 16)
    with caplog.at_level("WARNING", logger="sla.calendars"):
        due = add_business_time(start, hours(24), OFFICE)
        assert business_time_between(start, due, OFFICE) == hours(24)
        add_business_time(at(2027, 3, 1, 9), hours(100), OFFICE)
    assert due == at(2027, 1, 5, 13)
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1
    assert "Monday-Friday" in warnings[0].getMessage()


def test_a_ticket_received_in_an_unknown_year_gets_its_clocks(
    unknown_years_forgotten, team_a, customer, channel
):
    import time_machine

    from complaints.models import Priority
    from sla import services as sla
    from sla.models import Clock, SlaPolicy
    from tests.factories import make_ticket

    policy = SlaPolicy.objects.get(priority=Priority.P3, category=None, channel=None)
    policy.calendar = "business"
    policy.save()
    sla.policy_publish(policy)
    # Sat 2 Jan 2027 10:00: the weekend does not count; due Monday 13:00.
    with time_machine.travel(at(2027, 1, 2, 10), tick=False):
        ticket = make_ticket(customer=customer, channel=channel, team=team_a)
        sla.sweep()
    clock = Clock.objects.get(ticket=ticket, stage="first_response")
    assert clock.due_at == at(2027, 1, 4, 13)


def test_utc_input_gives_the_same_moment():
    start = at(2026, 9, 30, 16).astimezone(dt.UTC)
    assert add_business_time(start, hours(4), OFFICE) == at(2026, 10, 8, 11)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        add_business_time(dt.datetime(2026, 1, 5, 9), hours(1), OFFICE)  # noqa: DTZ001
    with pytest.raises(ValueError):
        add_business_time(at(2026, 1, 5, 9), hours(-1), OFFICE)
    with pytest.raises(ValueError):
        BusinessCalendar(kind="business", work_start=dt.time(18), work_end=dt.time(9))
    with pytest.raises(ValueError):
        BusinessCalendar(kind="weekly")

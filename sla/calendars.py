"""Working-time arithmetic for SLA clocks: 24×7, or business hours on Chinese working days.

Pure functions over a `BusinessCalendar` value, so they are cheap to test and never
touch the database. Chinese public holidays and the adjusted working days (调休, e.g.
a Saturday worked before 国庆) come from the `chinese-calendar` package; for a year
that package does not know yet we fall back to Monday–Friday rather than fail.
"""

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import chinese_calendar

logger = logging.getLogger(__name__)

TWENTY_FOUR_SEVEN = "24x7"
BUSINESS_HOURS = "business"

# A target longer than this many calendar days means a misconfigured calendar
# (e.g. a working window of zero length); stop instead of looping for ever.
MAX_SCAN_DAYS = 3660


@dataclass(frozen=True)
class BusinessCalendar:
    kind: str = TWENTY_FOUR_SEVEN
    work_start: dt.time = dt.time(9, 0)
    work_end: dt.time = dt.time(18, 0)
    chinese_holidays: bool = True
    timezone: str = "Asia/Shanghai"

    def __post_init__(self):
        if self.kind not in (TWENTY_FOUR_SEVEN, BUSINESS_HOURS):
            raise ValueError(f"Unknown calendar kind {self.kind!r}")
        if self.kind == BUSINESS_HOURS and self.work_start >= self.work_end:
            raise ValueError("The working day must end after it starts.")

    @property
    def is_24x7(self) -> bool:
        return self.kind == TWENTY_FOUR_SEVEN


ALWAYS = BusinessCalendar()


# Years the package had no schedule for, already logged (once per year and process).
_unknown_years: set[int] = set()
_unknown_years_lock = threading.Lock()


def _warn_unknown_year(year: int) -> None:
    with _unknown_years_lock:
        if year in _unknown_years:
            return
        _unknown_years.add(year)
    logger.warning(
        "chinese-calendar %s has no holiday schedule for %s: SLA business hours fall back "
        "to Monday-Friday for that year. Upgrade the package once the State Council "
        "publishes the schedule.",
        getattr(chinese_calendar, "__version__", "?"),
        year,
    )


def is_working_day(day: dt.date, calendar: BusinessCalendar) -> bool:
    if calendar.is_24x7:
        return True
    if calendar.chinese_holidays:
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            # A year the package has no official schedule for yet (the State Council
            # publishes it in November or December): weekdays work, weekends do not.
            _warn_unknown_year(day.year)
    return day.weekday() < 5


def _window(day: dt.date, calendar: BusinessCalendar, tz) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(day, calendar.work_start, tzinfo=tz),
        dt.datetime.combine(day, calendar.work_end, tzinfo=tz),
    )


def add_business_time(
    start: dt.datetime, duration: dt.timedelta, calendar: BusinessCalendar = ALWAYS
) -> dt.datetime:
    """The moment `duration` of working time has passed after `start`.

    Time outside working hours does not count: a 4-hour target started at 17:00 on a
    Friday before a holiday week is due at 12:00 on the first working day after it.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if duration < dt.timedelta(0):
        raise ValueError("duration must not be negative")
    if calendar.is_24x7 or not duration:
        return start + duration
    tz = ZoneInfo(calendar.timezone)
    cursor = start.astimezone(tz)
    remaining = duration
    for _ in range(MAX_SCAN_DAYS):
        day = cursor.date()
        if is_working_day(day, calendar):
            opens, closes = _window(day, calendar, tz)
            cursor = max(cursor, opens)
            if cursor < closes:
                available = closes - cursor
                if remaining <= available:
                    return (cursor + remaining).astimezone(start.tzinfo)
                remaining -= available
        cursor = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    raise ValueError("The calendar has no working time within ten years.")


def business_time_between(
    start: dt.datetime, end: dt.datetime, calendar: BusinessCalendar = ALWAYS
) -> dt.timedelta:
    """Working time between two moments (zero when `end` is not after `start`)."""
    if end <= start:
        return dt.timedelta(0)
    if calendar.is_24x7:
        return end - start
    tz = ZoneInfo(calendar.timezone)
    cursor, end = start.astimezone(tz), end.astimezone(tz)
    total = dt.timedelta(0)
    while cursor < end:
        day = cursor.date()
        if is_working_day(day, calendar):
            opens, closes = _window(day, calendar, tz)
            lo, hi = max(cursor, opens), min(end, closes)
            if hi > lo:
                total += hi - lo
        cursor = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return total

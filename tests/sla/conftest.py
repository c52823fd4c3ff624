import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday morning, far from holidays.
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def clock_at():
    """A stopped clock at T0 that tests move forward with `.shift(timedelta)` / `.move_to`."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller

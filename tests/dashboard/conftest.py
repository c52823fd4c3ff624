"""A small hand-built world whose every dashboard figure is worked out by hand.

"Now" is Monday 2026-11-23 09:00 in Shanghai. The range under test is 11-20 … 11-23.
Tickets (created_at in local time; W = 微信公众号, A = app; L = 物流配送,
I = 售后服务/安装延误; teams A = 客服一组, B = 客服二组):

    t1  11-20 00:30  W L A  resolved 11-20 04:30 (4 h), complete, 1 contact, never reopened
    t2  11-20 11:00  W L A  resolved 11-21 11:00 (24 h), complete by attachment, 2 contacts,
                            repeat of an old ticket
    t3  11-21 09:00  A I B  resolved 11-21 11:00 (2 h), no evidence, reopened once
    t4  11-22 08:00  A - -  unclassified, open, repeat of t1
    t8  11-22 12:00  W I B  open
    t5  11-23 08:00  W L A  today (computed live), open
    t6  11-21 10:00  W L A  merged: left out of everything
    t7  11-19 23:30  W L A  the day before the range (16:30 UTC on the 19th… and 23:30 local)

and one year earlier: 2025-11-21 (W L A) and 2025-11-23 (A I B), plus 2025-11-19 outside.
"""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine

from complaints.models import (
    Attachment,
    Category,
    CollaborationTask,
    Compensation,
    Department,
    Survey,
    Ticket,
)
from sla.models import Clock
from tests.factories import ChannelFactory, make_ticket
from tests.sla.conftest import SHANGHAI

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
FIRST, LAST = dt.date(2026, 11, 20), dt.date(2026, 11, 23)


def at(month, day, hour, minute=0, year=2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _ticket(created, channel, category, team, **fields):
    ticket = make_ticket(channel=channel, team=team)
    Clock.objects.filter(ticket=ticket).delete()  # each test ticket gets its own clocks
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=created,
        category=category,
        team=team,
        contact_count=1,
        reopen_count=0,
        **fields,
    )
    ticket.refresh_from_db()
    return ticket


def _clock(ticket, stage, due, met=None, paused=None):
    Clock.objects.create(
        ticket=ticket,
        stage=stage,
        target_minutes=240,
        started_at=ticket.created_at,
        due_at=due,
        met_at=met,
        paused_at=paused,
    )


def _survey(ticket, scores, overall, answered=True):
    efficiency, attitude, clarity, resolution, empathy = scores
    Survey.objects.create(
        ticket=ticket,
        token=f"tok-{ticket.pk}-{Survey.objects.count()}",
        expires_at=NOW + dt.timedelta(days=14),
        answered_at=NOW if answered else None,
        efficiency=efficiency,
        attitude=attitude,
        clarity=clarity,
        resolution=resolution,
        empathy=empathy,
        overall=overall,
    )


def _resolution(complete=True, evidence="快递单号 SF1"):
    return {
        "resolution_time": NOW - dt.timedelta(days=2) if complete else None,
        "responsible_person": "物流部 刘师傅",
        "solution": "补发",
        "evidence_ref": evidence,
    }


@pytest.fixture
def world(now, reference_data, team_a, team_b, senior, supervisor, channel):
    app = ChannelFactory(code="app", name="App")
    logistics = Category.objects.get(code="logistics")
    install = Category.objects.get(code="install-delay")
    closed = {"status": "closed"}

    old = _ticket(at(11, 21, 10, year=2025), channel, logistics, team_a, **closed)
    _ticket(at(11, 23, 10, year=2025), app, install, team_b, **closed)
    _ticket(at(11, 19, 10, year=2025), channel, logistics, team_a, **closed)

    t1 = _ticket(
        at(11, 20, 0, 30), channel, logistics, team_a,
        status="closed", resolved_at=at(11, 20, 4, 30), **_resolution(),
    )  # fmt: skip
    t2 = _ticket(
        at(11, 20, 11), channel, logistics, team_a,
        status="followed_up", resolved_at=at(11, 21, 11), repeat_of=old,
        **_resolution(evidence=""),
    )  # fmt: skip
    Ticket.objects.filter(pk=t2.pk).update(contact_count=2)
    Attachment.objects.create(
        ticket=t2, file="evidence/x.jpg", original_name="x.jpg", content_type="image/jpeg", size=1
    )
    t3 = _ticket(
        at(11, 21, 9), app, install, team_b,
        status="resolved", resolved_at=at(11, 21, 11), **_resolution(evidence=""),
    )  # fmt: skip
    Ticket.objects.filter(pk=t3.pk).update(reopen_count=1)
    t4 = _ticket(at(11, 22, 8), app, None, None, repeat_of=t1)
    t8 = _ticket(at(11, 22, 12), channel, install, team_b)
    t5 = _ticket(at(11, 23, 8), channel, logistics, team_a)
    t6 = _ticket(
        at(11, 21, 10), channel, logistics, team_a,
        status="merged", resolved_at=at(11, 21, 12), **_resolution(),
    )  # fmt: skip
    t7 = _ticket(
        at(11, 19, 23, 30), channel, logistics, team_a,
        status="closed", resolved_at=at(11, 20, 1), **_resolution(),
    )  # fmt: skip

    # SLA clocks.
    _clock(t1, "first_response", due=at(11, 20, 4, 30), met=at(11, 20, 1))  # on time
    _clock(t1, "assessment", due=at(11, 21, 0, 30), met=at(11, 20, 2))  # on time
    _clock(t1, "solution", due=at(11, 20, 3), met=at(11, 20, 4, 30))  # late
    _clock(t1, "closure", due=at(11, 25, 0, 30))  # running, within time: pending
    _clock(t2, "first_response", due=at(11, 20, 15), met=at(11, 20, 16))  # late
    _clock(t2, "assessment", due=at(11, 21, 11), met=at(11, 20, 12))  # on time
    _clock(t3, "first_response", due=at(11, 21, 13))  # never met, overdue: late
    _clock(t4, "first_response", due=at(11, 22, 12), paused=at(11, 22, 9))  # paused: pending
    _clock(t5, "first_response", due=at(11, 23, 12), met=at(11, 23, 8, 30))  # on time (live)
    _clock(t6, "first_response", due=at(11, 21, 11), met=at(11, 21, 20))  # merged
    _clock(t7, "first_response", due=at(11, 20, 3))  # outside the range

    # Surveys: five dimensions 1–5 and overall 0–10.
    _survey(t1, (5, 4, 3, 5, 4), 10)  # promoter
    _survey(t2, (4, 4, 2, 3, 5), 9)  # promoter
    _survey(t2, (1, 1, 1, 1, 1), 0, answered=False)  # sent, never answered
    _survey(t3, (2, 3, 4, 1, 3), 3)  # detractor
    _survey(t6, (5, 5, 5, 5, 5), 10)  # merged
    _survey(t7, (1, 1, 1, 1, 1), 0)  # outside the range

    # Collaboration tasks.
    dept = {d.code: d for d in Department.objects.filter(code__in=["logistics", "tech"])}

    def task(ticket, department, opened, due, claimed=None, completed=None, state="open"):
        CollaborationTask.objects.create(
            ticket=ticket,
            department=dept[department],
            responsibility="查件",
            instruction="请核实",
            state=state,
            created_by=senior,
            respond_due_at=due,
            complete_due_at=due + dt.timedelta(days=2),
            claimed_at=claimed,
            completed_at=completed,
            created_at=opened,
        )

    task(t1, "logistics", at(11, 20, 10), at(11, 20, 14), at(11, 20, 11), at(11, 20, 20), "done")
    task(t2, "logistics", at(11, 20, 12), at(11, 20, 16), at(11, 20, 18), state="claimed")
    task(t3, "tech", at(11, 21, 9, 30), at(11, 21, 11, 30))
    task(t1, "tech", at(11, 20, 9), at(11, 20, 11), state="cancelled")
    task(t6, "tech", at(11, 21, 10), at(11, 21, 12), at(11, 21, 10, 30), state="claimed")

    # Compensation: only granted and approved amounts count.
    def comp(ticket, kind, amount, state):
        Compensation.objects.create(
            ticket=ticket, kind=kind, amount=Decimal(amount), reason="致歉", state=state,
            requested_by=senior,
        )  # fmt: skip

    comp(t1, "coupon", "10.00", "granted")
    comp(t2, "coupon", "5.50", "approved")
    comp(t3, "refund", "100.00", "granted")
    comp(t3, "cash", "50.00", "requested")
    comp(t2, "gift", "20.00", "rejected")
    comp(t6, "coupon", "8.00", "granted")
    comp(t7, "coupon", "9.00", "granted")
    comp(t5, "refund", "30.00", "granted")

    return SimpleNamespace(
        t1=t1, t2=t2, t3=t3, t4=t4, t5=t5, t8=t8, app=app, wechat=channel,
        logistics=logistics, install=install, team_a=team_a, team_b=team_b,
    )  # fmt: skip

"""The closed loop through the services: every transition allowed and refused, with its message."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from channels import outbox
from complaints import services
from complaints.models import (
    EventKind,
    Impact,
    Level,
    Priority,
    Status,
    Ticket,
    TicketSequence,
    TimelineEvent,
)
from tests.conftest import drive, first_response_text
from tests.factories import leaf_category, make_ticket

pytestmark = pytest.mark.django_db


def kinds(ticket):
    return list(ticket.events.order_by("id").values_list("kind", flat=True))


def classify(ticket, actor, **overrides):
    data = {
        "category": leaf_category("logistics"),
        "amount_level": Level.LOW,
        "impact": Impact.INDIVIDUAL,
        "urgency": Level.MEDIUM,
    }
    data.update(overrides)
    return services.ticket_classify(ticket=ticket.number, actor=actor, **data)


def test_new_ticket_has_number_deadlines_contact_and_created_event(ticket):
    assert ticket.status == Status.RECEIVED
    local_day = timezone.localdate(ticket.created_at)
    # The day's next serial (on PostgreSQL earlier tests may have taken some: numbers
    # are taken in autocommit there, outside the test's rolled-back transaction).
    serial = int(ticket.number.rsplit("-", 1)[1])
    assert ticket.number == f"TS{local_day:%Y%m%d}-{serial:06d}"
    assert TicketSequence.objects.get(day=local_day).last == serial
    assert ticket.first_response_due_at == ticket.created_at + dt.timedelta(hours=4)
    assert ticket.due_at == ticket.first_response_due_at
    assert ticket.contacts.count() == 1
    assert kinds(ticket) == [EventKind.CREATED]


def test_full_loop_writes_one_event_per_action(ticket, agent):
    drive(ticket, agent, "closed")
    assert ticket.status == Status.CLOSED
    assert kinds(ticket) == [
        "created",
        "classified",
        "assigned",
        "first_response",
        "started",
        "resolved",
        "survey_sent",
        "callback",
        "followed_up",
        "closed",
    ]
    event = ticket.events.get(kind=EventKind.CLASSIFIED)
    assert event.actor == agent
    assert event.before["status"] == Status.RECEIVED
    assert event.after == {
        "status": "classified",
        "category": "物流配送",
        "amount_level": 1,
        "impact": 1,
        "urgency": 2,
        "priority": Priority.P3,
    }
    assert ticket.due_at is None and ticket.closed_at is not None


class TestClassify:
    def test_without_category_and_grading_names_what_is_missing(self, ticket, agent):
        with pytest.raises(ValidationError) as exc:
            services.ticket_classify(
                ticket=ticket.number,
                actor=agent,
                category=None,
                amount_level=None,
                impact=Level.LOW,
                urgency=None,
            )
        errors = exc.value.message_dict
        assert set(errors) == {"category", "amount_level", "urgency"}
        ticket.refresh_from_db()
        assert ticket.status == Status.RECEIVED and kinds(ticket) == ["created"]

    def test_parent_category_is_refused(self, ticket, agent):
        with pytest.raises(ValidationError) as exc:
            classify(ticket, agent, category=leaf_category("after-sales"))
        assert "售后服务" in exc.value.message_dict["category"][0]

    @pytest.mark.parametrize(
        ("amount", "impact", "urgency", "priority"),
        [
            (Level.LOW, Impact.INDIVIDUAL, Level.LOW, Priority.P4),
            (Level.MEDIUM, Impact.INDIVIDUAL, Level.LOW, Priority.P3),
            (Level.HIGH, Impact.GROUP, Level.LOW, Priority.P2),
            (Level.LOW, Impact.PUBLIC, Level.LOW, Priority.P1),
            (Level.LOW, Impact.INDIVIDUAL, Level.HIGH, Priority.P1),
        ],
    )
    def test_grading_yields_priority(self, ticket, agent, amount, impact, urgency, priority):
        classify(ticket, agent, amount_level=amount, impact=impact, urgency=urgency)
        ticket.refresh_from_db()
        assert ticket.priority == priority

    def test_out_of_range_grade_is_refused(self, ticket, agent):
        with pytest.raises(ValidationError) as exc:
            classify(ticket, agent, impact=7)
        assert "impact" in exc.value.message_dict

    def test_classify_after_start_is_a_conflict(self, ticket, agent):
        drive(ticket, agent, "in_progress")
        with pytest.raises(services.Conflict, match="classif"):
            classify(ticket, agent)


class TestAssign:
    def test_agent_takes_ticket(self, ticket, agent):
        classify(ticket, agent)
        services.ticket_assign(ticket=ticket.number, actor=agent, assignee=agent)
        ticket.refresh_from_db()
        assert ticket.status == Status.ASSIGNED and ticket.assignee == agent

    def test_assign_before_classify_says_classify_first(self, ticket, agent):
        with pytest.raises(services.Conflict, match="Classify the ticket"):
            services.ticket_assign(ticket=ticket.number, actor=agent, assignee=agent)

    def test_agent_cannot_assign_someone_else(self, ticket, agent, agent2):
        classify(ticket, agent)
        with pytest.raises(PermissionDenied):
            services.ticket_assign(ticket=ticket.number, actor=agent, assignee=agent2)

    def test_second_agent_taking_loses_the_race(self, ticket, agent, agent2):
        classify(ticket, agent)
        services.ticket_assign(ticket=ticket.number, actor=agent, assignee=agent)
        with pytest.raises(services.Conflict, match="already taken"):
            services.ticket_assign(ticket=ticket.number, actor=agent2, assignee=agent2)

    def test_senior_reassigns_in_progress_ticket_keeping_state(self, ticket, agent, agent2, senior):
        drive(ticket, agent, "in_progress")
        services.ticket_assign(ticket=ticket.number, actor=senior, assignee=agent2)
        ticket.refresh_from_db()
        assert ticket.status == Status.IN_PROGRESS and ticket.assignee == agent2
        event = ticket.events.filter(kind=EventKind.ASSIGNED).last()
        assert event.before["assignee"] == "agent" and event.after["assignee"] == "agent2"

    def test_department_staff_cannot_be_assignee(self, ticket, senior, logistics):
        classify(ticket, senior)
        with pytest.raises(ValidationError):
            services.ticket_assign(ticket=ticket.number, actor=senior, assignee=logistics)

    def test_senior_of_other_team_is_refused(self, ticket, agent, other_agent):
        classify(ticket, agent)
        with pytest.raises(PermissionDenied, match="another team"):
            services.ticket_assign(ticket=ticket.number, actor=other_agent, assignee=other_agent)


class TestFirstResponse:
    def _ready(self, ticket, agent):
        drive(ticket, agent, "assigned")

    def test_without_deadline_is_refused(self, ticket, agent):
        self._ready(ticket, agent)
        with pytest.raises(ValidationError) as exc:
            services.ticket_first_response(
                ticket=ticket.number,
                actor=agent,
                message=first_response_text(ticket),
                promised_followup_at=None,
            )
        assert "promised_followup_at" in exc.value.message_dict

    def test_without_status_path_is_refused(self, ticket, agent):
        self._ready(ticket, agent)
        with pytest.raises(ValidationError) as exc:
            services.ticket_first_response(
                ticket=ticket.number,
                actor=agent,
                message="您好，我们会尽快处理。",
                promised_followup_at=timezone.now() + dt.timedelta(hours=8),
            )
        message = exc.value.message_dict["message"][0]
        assert ticket.number in message and "status link" in message

    def test_past_deadline_is_refused(self, ticket, agent):
        self._ready(ticket, agent)
        with pytest.raises(ValidationError):
            services.ticket_first_response(
                ticket=ticket.number,
                actor=agent,
                message=first_response_text(ticket),
                promised_followup_at=timezone.now() - dt.timedelta(minutes=1),
            )

    def test_records_promise_and_moves_deadline(self, ticket, agent):
        self._ready(ticket, agent)
        promise = timezone.now() + dt.timedelta(hours=20)
        services.ticket_first_response(
            ticket=ticket.number,
            actor=agent,
            message=first_response_text(ticket),
            promised_followup_at=promise,
        )
        ticket.refresh_from_db()
        assert ticket.promised_followup_at == promise
        assert ticket.status == Status.ASSIGNED
        # Written is not sent: the first-response deadline holds until the outbox sends it.
        assert ticket.due_at == ticket.first_response_due_at
        outbox.deliver_due()
        ticket.refresh_from_db()
        assert ticket.first_response_sent_at is not None
        assert ticket.due_at == ticket.resolve_due_at

    def test_start_before_first_response_is_refused(self, ticket, agent):
        self._ready(ticket, agent)
        with pytest.raises(services.Conflict, match="first response"):
            services.ticket_start(ticket=ticket.number, actor=agent)

    def test_second_first_response_is_a_conflict(self, ticket, agent):
        drive(ticket, agent, "first_responded")
        with pytest.raises(services.Conflict, match="already"):
            services.ticket_first_response(
                ticket=ticket.number,
                actor=agent,
                message=first_response_text(ticket),
                promised_followup_at=timezone.now() + dt.timedelta(hours=5),
            )


class TestResolve:
    def test_missing_four_elements_are_named(self, ticket, agent):
        drive(ticket, agent, "in_progress")
        with pytest.raises(ValidationError) as exc:
            services.ticket_resolve(
                ticket=ticket.number,
                actor=agent,
                solution="",
                responsible_person="",
                resolution_time=None,
            )
        message = exc.value.messages[0]
        for element in ("time", "responsible person", "solution", "evidence"):
            assert element in message
        ticket.refresh_from_db()
        assert ticket.status == Status.IN_PROGRESS and ticket.solution == ""

    def test_attachment_counts_as_evidence(self, ticket, agent, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        drive(ticket, agent, "in_progress")
        services.attachment_add(
            ticket=ticket.number,
            actor=agent,
            uploaded=SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64),
        )
        services.ticket_resolve(
            ticket=ticket.number,
            actor=agent,
            solution="退款 50 元",
            responsible_person="小李",
            resolution_time=timezone.now(),
        )
        ticket.refresh_from_db()
        assert ticket.status == Status.RESOLVED

    def test_resolve_from_assigned_is_a_conflict(self, ticket, agent):
        drive(ticket, agent, "first_responded")
        with pytest.raises(services.Conflict, match="in progress"):
            services.ticket_resolve(
                ticket=ticket.number,
                actor=agent,
                solution="x",
                responsible_person="y",
                resolution_time=timezone.now(),
                evidence_ref="z",
            )


class TestFollowUpAndClose:
    def test_close_before_follow_up_names_the_missing_step(self, ticket, agent):
        drive(ticket, agent, "resolved")
        with pytest.raises(services.Conflict, match="followed up"):
            services.ticket_close(ticket=ticket.number, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == Status.RESOLVED

    def test_follow_up_without_record_is_refused(self, ticket, agent):
        drive(ticket, agent, "resolved")
        with pytest.raises(ValidationError) as exc:
            services.ticket_follow_up(ticket=ticket.number, actor=agent, note="  ")
        assert "note" in exc.value.message_dict

    def test_reopen_needs_reason_and_counts(self, ticket, agent):
        drive(ticket, agent, "closed")
        with pytest.raises(ValidationError):
            services.ticket_reopen(ticket=ticket.number, actor=agent, reason="")
        services.ticket_reopen(
            ticket=ticket.number, actor=agent, reason="客户来电说补发的商品也有问题"
        )
        ticket.refresh_from_db()
        assert ticket.status == Status.IN_PROGRESS
        assert ticket.reopen_count == 1 and ticket.closed_at is None and ticket.resolved_at is None

    def test_reopen_open_ticket_is_a_conflict(self, ticket, agent):
        drive(ticket, agent, "in_progress")
        with pytest.raises(services.Conflict):
            services.ticket_reopen(ticket=ticket.number, actor=agent, reason="x")


class TestMerge:
    def test_merge_moves_contacts_and_marks_both_timelines(
        self, ticket, agent, customer, channel, team_a
    ):
        duplicate = make_ticket(
            customer=customer, channel=channel, team=team_a, subject="又来投诉快递"
        )
        drive(duplicate, agent, "assigned")
        services.ticket_merge(ticket=duplicate.number, actor=agent, into=ticket.number)
        duplicate.refresh_from_db()
        ticket.refresh_from_db()
        assert duplicate.status == Status.MERGED and duplicate.merged_into == ticket
        assert ticket.contacts.count() == 2 and ticket.contact_count == 2
        assert kinds(ticket)[-1] == EventKind.MERGED_FROM
        assert kinds(duplicate)[-1] == EventKind.MERGED
        merged_event = duplicate.events.get(kind=EventKind.MERGED)
        assert merged_event.before == {"status": Status.ASSIGNED}

    def test_merge_into_other_customer_or_itself_is_refused(self, ticket, agent, channel, team_a):
        drive(ticket, agent, "assigned")
        stranger = make_ticket(channel=channel, team=team_a)
        with pytest.raises(ValidationError, match="same customer"):
            services.ticket_merge(ticket=ticket.number, actor=agent, into=stranger.number)
        with pytest.raises(ValidationError, match="itself"):
            services.ticket_merge(ticket=ticket.number, actor=agent, into=ticket.number)
        with pytest.raises(ValidationError, match="No ticket"):
            services.ticket_merge(ticket=ticket.number, actor=agent, into="TS19990101-000001")


class TestPermissions:
    def test_department_staff_cannot_work_tickets(self, ticket, logistics):
        with pytest.raises(PermissionDenied, match="customer-service staff"):
            classify(ticket, logistics)

    def test_user_without_role_cannot_work_tickets(self, ticket, outsider):
        with pytest.raises(PermissionDenied):
            services.ticket_reply(ticket=ticket.number, actor=outsider, body="hi")

    def test_agent_cannot_resolve_colleagues_ticket(self, ticket, agent, agent2):
        drive(ticket, agent, "in_progress")
        with pytest.raises(PermissionDenied, match="assignee"):
            services.ticket_resolve(
                ticket=ticket.number,
                actor=agent2,
                solution="x",
                responsible_person="y",
                resolution_time=timezone.now(),
                evidence_ref="z",
            )

    def test_senior_can_act_for_team_and_supervisor_for_all(
        self, ticket, agent, senior, supervisor
    ):
        drive(ticket, agent, "resolved")
        services.ticket_follow_up(ticket=ticket.number, actor=senior, note="组长回访，客户满意")
        services.ticket_close(ticket=ticket.number, actor=supervisor)
        ticket.refresh_from_db()
        assert ticket.status == Status.CLOSED

    def test_any_agent_may_add_internal_note_and_escalate(self, ticket, agent, agent2):
        drive(ticket, agent, "in_progress")
        services.ticket_reply(
            ticket=ticket.number, actor=agent2, body="这个客户上周也来过", internal=True
        )
        services.ticket_escalate(ticket=ticket.number, actor=agent2, reason="客户称要找媒体曝光")
        ticket.refresh_from_db()
        assert ticket.escalation_level == 1
        assert kinds(ticket)[-2:] == [EventKind.NOTE, EventKind.ESCALATED]


class TestConcurrencyGuards:
    def test_stale_version_is_a_conflict_and_changes_nothing(self, ticket, agent):
        stale = ticket.version
        classify(ticket, agent)
        with pytest.raises(services.Conflict, match="changed by someone else"):
            services.ticket_assign(
                ticket=ticket.number, actor=agent, assignee=agent, expected_version=stale
            )
        ticket.refresh_from_db()
        assert ticket.status == Status.CLASSIFIED and ticket.assignee is None

    def test_status_cannot_be_assigned_directly(self, ticket):
        with pytest.raises(AttributeError):
            ticket.status = Status.CLOSED

    def test_timeline_is_append_only(self, ticket):
        event = ticket.events.get()
        event.message = "rewritten"
        with pytest.raises(TypeError):
            event.save()
        with pytest.raises(TypeError):
            event.delete()
        with pytest.raises(TypeError):
            TimelineEvent.objects.filter(pk=event.pk).update(message="x")
        with pytest.raises(TypeError):
            TimelineEvent.objects.all().delete()
        assert TimelineEvent.objects.get(pk=event.pk).message != "rewritten"

    def test_full_clean_works_on_protected_status(self, ticket):
        Ticket.objects.get(pk=ticket.pk).full_clean()


class TestAttachments:
    @pytest.mark.parametrize(
        ("name", "content", "reason"),
        [
            ("virus.exe", b"MZ" + b"0" * 20, "Allowed evidence files"),
            ("fake.png", b"GIF89a" + b"0" * 20, "does not match"),
            ("empty.pdf", b"", "empty"),
        ],
    )
    def test_bad_files_are_refused(self, ticket, agent, settings, tmp_path, name, content, reason):
        settings.MEDIA_ROOT = tmp_path
        with pytest.raises(ValidationError, match=reason):
            services.attachment_add(
                ticket=ticket.number, actor=agent, uploaded=SimpleUploadedFile(name, content)
            )
        assert ticket.attachments.count() == 0

    def test_oversized_file_is_refused(self, ticket, agent, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        settings.CLOSELOOP_MAX_ATTACHMENT_BYTES = 100
        with pytest.raises(ValidationError, match="larger"):
            services.attachment_add(
                ticket=ticket.number,
                actor=agent,
                uploaded=SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * 200),
            )

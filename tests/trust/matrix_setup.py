"""The world every permission-matrix request runs against (built fresh for each case)."""

from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile

from complaints import services
from tests.conftest import drive
from tests.factories import make_ticket

PERSONAS = (
    "anonymous",
    "agent",
    "senior",
    "supervisor",
    "logistics_own",
    "logistics_other",
    "admin",
)


@dataclass
class World:
    ticket: object  # in progress, assigned to the agent, with a logistics task
    other: object  # a ticket logistics has no task on
    task: object
    other_task: object  # the tech department's task on `other`
    request: object  # a pending compensation request routed to tier 2
    attachment: object
    customer: object
    callback: object  # a pending call-back of a resolved ticket
    survey_link: str
    message: object = None  # the outbound first response on `ticket` (sent)


def build_world(*, agent, customer, channel, team_a, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path
    ticket = make_ticket(customer=customer, channel=channel, team=team_a, order_no="SO1")
    drive(ticket, agent, "in_progress")
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec(department="logistics", responsibility="核实物流")],
        instruction="请核实",
    )
    other = make_ticket(customer=customer, channel=channel, team=team_a)
    (other_task,) = services.task_open(
        ticket=other.number,
        actor=agent,
        specs=[services.TaskSpec(department="tech", responsibility="排查")],
        instruction="请排查",
    )
    request = services.compensation_grant(
        ticket=ticket.number, actor=agent, kind="cash", amount="50", reason="x", request=True
    )
    attachment = services.attachment_add(
        ticket=ticket.number,
        actor=agent,
        uploaded=SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32),
    )
    resolved = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(resolved, agent, "resolved")
    survey = resolved.surveys.get()
    link = services.survey_url(survey).rsplit("/survey/", 1)[1].strip("/")
    world = World(
        ticket,
        other,
        task,
        other_task,
        request,
        attachment,
        customer,
        resolved.callbacks.order_by("due_at").first(),
        link,
    )
    world.message = ticket.outbound_messages.get(kind="first_response")
    return world

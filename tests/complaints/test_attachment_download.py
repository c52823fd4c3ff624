"""Evidence files are served only through a login-checked view, never as public URLs."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from complaints import services

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def add_evidence(ticket, actor, settings, tmp_path, name="签收单.png", content=PNG):
    settings.MEDIA_ROOT = tmp_path
    return services.attachment_add(
        ticket=ticket.number, actor=actor, uploaded=SimpleUploadedFile(name, content)
    )


def test_staff_download_their_ticket_evidence(client, login, agent, ticket, settings, tmp_path):
    attachment = add_evidence(ticket, agent, settings, tmp_path)
    url = attachment.get_absolute_url()
    assert url == reverse("workspace:attachment", args=[ticket.number, attachment.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous.url
    response = login(agent).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Disposition"].startswith("inline")
    page = login(agent).get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
    assert url in page and "/media/" not in page


def test_text_files_download_instead_of_rendering(login, agent, ticket, settings, tmp_path):
    attachment = add_evidence(
        ticket, agent, settings, tmp_path, name="note.txt", content=b"<script>alert(1)</script>"
    )
    response = login(agent).get(attachment.get_absolute_url())
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_department_staff_and_outsiders_get_404(
    login, agent, logistics, outsider, ticket, settings, tmp_path
):
    attachment = add_evidence(ticket, agent, settings, tmp_path)
    services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec(department="logistics", responsibility="核实")],
        instruction="请核实",
    )
    for user in (logistics, outsider):
        assert login(user).get(attachment.get_absolute_url()).status_code == 404


def test_evidence_of_another_ticket_is_404(
    login, agent, ticket, customer, channel, team_a, settings, tmp_path
):
    from tests.factories import make_ticket

    attachment = add_evidence(ticket, agent, settings, tmp_path)
    other = make_ticket(customer=customer, channel=channel, team=team_a)
    url = reverse("workspace:attachment", args=[other.number, attachment.pk])
    assert login(agent).get(url).status_code == 404

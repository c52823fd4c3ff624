"""Users get Chinese by default and English on request (the suite otherwise asserts English)."""

import pytest
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db


def test_default_language_is_simplified_chinese(client, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override(None):
        body = client.get(reverse("login")).content.decode()
    assert "登录" in body and 'lang="zh-hans"' in body


def test_english_on_request(client, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override(None):
        body = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Log in to Closeloop" in body


def test_service_messages_are_translated(ticket, agent):
    from django.core.exceptions import PermissionDenied

    from complaints import services

    with translation.override("zh-hans"), pytest.raises(PermissionDenied) as exc:
        services.ticket_start(ticket=ticket.number, actor=agent)
    assert not exc.value.args[0].isascii()

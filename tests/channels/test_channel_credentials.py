"""Channel credentials: created and rotated by command or admin, the secret shown once."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from channels.models import Channel

pytestmark = pytest.mark.django_db


def run(command, *args):
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_channel_create_prints_code_key_and_secret_as_json():
    printed = json.loads(run("channel_create", "--code", "wechat-main", "--kind", "wechat"))
    assert set(printed) == {"code", "key", "secret"}
    channel = Channel.objects.get(code="wechat-main")
    assert printed == {"code": "wechat-main", "key": channel.key, "secret": channel.secret}
    assert channel.kind == "wechat" and channel.is_active
    assert len(printed["secret"]) >= 40


def test_channel_create_takes_a_name_and_refuses_a_duplicate_code():
    run("channel_create", "--code", "app-main", "--kind", "app", "--name", "官方 App")
    assert Channel.objects.get(code="app-main").name == "官方 App"
    with pytest.raises(CommandError, match="already exists"):
        run("channel_create", "--code", "app-main", "--kind", "app")
    assert Channel.objects.filter(code="app-main").count() == 1


def test_channel_create_refuses_a_bad_code():
    with pytest.raises(CommandError, match="code"):
        run("channel_create", "--code", "not a slug", "--kind", "app")
    assert not Channel.objects.exists()


def test_every_channel_gets_its_own_key_and_secret():
    first = json.loads(run("channel_create", "--code", "a", "--kind", "app"))
    second = json.loads(run("channel_create", "--code", "b", "--kind", "app"))
    # get_or_create, as seed_demo uses, fills them too.
    third, _ = Channel.objects.get_or_create(code="c", defaults={"name": "c", "kind": "web"})
    assert len({first["key"], second["key"], third.key}) == 3
    assert len({first["secret"], second["secret"], third.secret}) == 3


def test_rotate_secret_prints_a_new_secret_and_keeps_the_key():
    created = json.loads(run("channel_create", "--code", "hotline", "--kind", "hotline"))
    rotated = json.loads(run("channel_rotate_secret", "--code", "hotline"))
    assert rotated["code"] == "hotline" and rotated["key"] == created["key"]
    assert rotated["secret"] != created["secret"]
    assert Channel.objects.get(code="hotline").secret == rotated["secret"]


def test_rotate_secret_of_an_unknown_channel_fails():
    with pytest.raises(CommandError, match="No such channel"):
        run("channel_rotate_secret", "--code", "nope")


def test_admin_shows_the_key_never_the_secret_and_rotates_once(admin_client_for_channels):
    client = admin_client_for_channels
    created = json.loads(run("channel_create", "--code", "weibo", "--kind", "weibo"))
    channel = Channel.objects.get(code="weibo")
    page = client.get(reverse("admin:channels_channel_change", args=[channel.pk]))
    assert page.status_code == 200
    assert created["key"] in page.content.decode()
    assert created["secret"] not in page.content.decode()
    listing = client.get(reverse("admin:channels_channel_changelist"))
    assert created["secret"] not in listing.content.decode()

    response = client.post(
        reverse("admin:channels_channel_changelist"),
        {"action": "rotate_secret", "_selected_action": [channel.pk]},
        follow=True,
    )
    channel.refresh_from_db()
    assert channel.secret != created["secret"]
    assert channel.secret in response.content.decode()
    # Once: the next page no longer carries it.
    again = client.get(reverse("admin:channels_channel_changelist"))
    assert channel.secret not in again.content.decode()


def test_admin_add_shows_the_new_secret_once(admin_client_for_channels):
    client = admin_client_for_channels
    response = client.post(
        reverse("admin:channels_channel_add"),
        {"code": "store-sh", "name": "上海门店", "kind": "store", "is_active": "on"},
        follow=True,
    )
    channel = Channel.objects.get(code="store-sh")
    assert channel.secret in response.content.decode()
    again = client.get(reverse("admin:channels_channel_change", args=[channel.pk]))
    assert channel.secret not in again.content.decode()


@pytest.fixture
def admin_client_for_channels(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migration_gives_existing_channels_distinct_keys():
    executor = MigrationExecutor(connection)
    executor.migrate([("channels", "0001_initial")])
    old_apps = executor.loader.project_state([("channels", "0001_initial")]).apps
    OldChannel = old_apps.get_model("channels", "Channel")
    OldChannel.objects.create(code="old-1", name="old 1", kind="app")
    OldChannel.objects.create(code="old-2", name="old 2", kind="web")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    keys = dict(Channel.objects.values_list("code", "key"))
    secrets = set(Channel.objects.values_list("secret", flat=True))
    assert set(keys) == {"old-1", "old-2"}
    assert all(k.startswith("ck_") for k in keys.values())
    assert len(set(keys.values())) == 2 and len(secrets) == 2

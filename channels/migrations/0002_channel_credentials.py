"""Per-channel API key and secret; existing channels get fresh ones."""

import django.utils.timezone
from django.db import migrations, models

import channels.models


def fill_credentials(apps, schema_editor):
    Channel = apps.get_model("channels", "Channel")
    for channel in Channel.objects.all():
        channel.key = channels.models.new_channel_key()
        channel.secret = channels.models.new_channel_secret()
        channel.save(update_fields=["key", "secret"])


class Migration(migrations.Migration):
    dependencies = [("channels", "0001_initial")]

    operations = [
        # Nullable first, filled per row, then unique: a callable default is evaluated
        # once for AddField, which would give every existing row the same key.
        migrations.AddField(
            model_name="channel",
            name="key",
            field=models.CharField(max_length=40, null=True, editable=False, verbose_name="API key"),
        ),
        migrations.AddField(
            model_name="channel",
            name="secret",
            field=models.CharField(max_length=64, null=True, editable=False, verbose_name="API secret"),
        ),
        migrations.AddField(
            model_name="channel",
            name="secret_rotated_at",
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name="secret set at"),
        ),
        migrations.RunPython(fill_credentials, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="channel",
            name="key",
            field=models.CharField(
                default=channels.models.new_channel_key,
                editable=False,
                max_length=40,
                unique=True,
                verbose_name="API key",
            ),
        ),
        migrations.AlterField(
            model_name="channel",
            name="secret",
            field=models.CharField(
                default=channels.models.new_channel_secret,
                editable=False,
                max_length=64,
                verbose_name="API secret",
            ),
        ),
    ]

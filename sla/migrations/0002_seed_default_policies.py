from django.db import migrations

from sla.seeds import ensure_default_policies


def seed(apps, schema_editor):
    ensure_default_policies(apps.get_model("sla", "SlaPolicy"), apps.get_model("sla", "SlaPolicyVersion"))


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

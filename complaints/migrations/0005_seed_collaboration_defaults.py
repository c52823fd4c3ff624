from django.db import migrations

from complaints.seeds import ensure_collaboration_defaults


def seed(apps, schema_editor):
    ensure_collaboration_defaults(
        apps.get_model("complaints", "CompensationLimit"),
        apps.get_model("complaints", "Department"),
    )


class Migration(migrations.Migration):
    dependencies = [("complaints", "0004_compensation_tasks")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

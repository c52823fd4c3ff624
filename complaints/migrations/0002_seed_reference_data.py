from django.db import migrations

from complaints.seeds import ensure_reference_data


def seed(apps, schema_editor):
    ensure_reference_data(
        apps.get_model("complaints", "Category"), apps.get_model("complaints", "Department")
    )


class Migration(migrations.Migration):
    dependencies = [("complaints", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

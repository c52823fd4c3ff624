from django.db import migrations


def seed(apps, schema_editor):
    from triage.seeds import ensure_urgency_terms

    ensure_urgency_terms(apps.get_model("triage", "UrgencyTerm"))


class Migration(migrations.Migration):
    dependencies = [("triage", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

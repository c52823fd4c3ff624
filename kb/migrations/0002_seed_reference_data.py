from django.db import migrations


def seed(apps, schema_editor):
    from kb.seeds import ensure_kb_reference_data

    ensure_kb_reference_data(
        apps.get_model("kb", "ForbiddenPhrase"),
        apps.get_model("kb", "SynonymGroup"),
        apps.get_model("kb", "CategoryReviewPolicy"),
        apps.get_model("complaints", "Category"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("kb", "0001_initial"),
        ("complaints", "0005_seed_collaboration_defaults"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

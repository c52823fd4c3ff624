from django.db import migrations

from complaints.seeds import CATEGORIES, COLLABORATING_DEPARTMENTS


def seed(apps, schema_editor):
    Category = apps.get_model("complaints", "Category")
    Department = apps.get_model("complaints", "Department")
    for order, (code, name, children) in enumerate(CATEGORIES):
        root, _ = Category.objects.get_or_create(
            code=code, defaults={"name": name, "sort_order": order * 10}
        )
        for child_order, (child_code, child_name) in enumerate(children):
            Category.objects.get_or_create(
                code=child_code,
                defaults={"name": child_name, "parent": root, "sort_order": child_order},
            )
    for code, name in COLLABORATING_DEPARTMENTS:
        Department.objects.get_or_create(
            code=code, defaults={"name": name, "kind": "collaborating"}
        )


class Migration(migrations.Migration):
    dependencies = [("complaints", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

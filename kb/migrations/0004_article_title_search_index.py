"""A GIN index on the title tokens alone (PostgreSQL).

kb.search ranks a bounded pool when a query matches more than COUNT_CAP articles; this
index finds the title matches cheaply so they always join that pool.
"""

from django.db import migrations

from kb.db import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0003_script_survey_placeholder"),
    ]

    operations = [
        PostgresOnlySQL(
            sql=[
                "CREATE INDEX kb_article_title_gin ON kb_article "
                "USING gin (to_tsvector('pg_catalog.simple'::regconfig, title_tokens))",
            ],
            reverse_sql=["DROP INDEX IF EXISTS kb_article_title_gin"],
        ),
    ]

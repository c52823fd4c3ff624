# Ticket text search for the knowledge-base app (kb.search): jieba tokens of subject
# and description, and on PostgreSQL a `simple` tsvector kept by a trigger, GIN-indexed.

import django.contrib.postgres.search
from django.db import migrations, models

from kb.db import PostgresOnlySQL


def backfill_tokens(apps, schema_editor):
    """Tokens for the tickets that exist already (new ones get them in ticket_create)."""
    Ticket = apps.get_model("complaints", "Ticket")
    if not Ticket.objects.exists():
        return
    from kb.search import ticket_tokens

    batch = []
    for ticket in Ticket.objects.only("pk", "subject", "body").iterator(chunk_size=1000):
        ticket.search_tokens = ticket_tokens(subject=ticket.subject, body=ticket.body)
        batch.append(ticket)
        if len(batch) == 1000:
            Ticket.objects.bulk_update(batch, ["search_tokens"])
            batch = []
    if batch:
        Ticket.objects.bulk_update(batch, ["search_tokens"])


class Migration(migrations.Migration):

    dependencies = [
        ('complaints', '0009_event_kinds'),
    ]

    operations = [
        migrations.AddField(
            model_name='ticket',
            name='search_tokens',
            field=models.TextField(default='', editable=False),
        ),
        migrations.AddField(
            model_name='ticket',
            name='search_vector',
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        PostgresOnlySQL(
            sql=[
                "CREATE TRIGGER complaints_ticket_search_vector_update "
                "BEFORE INSERT OR UPDATE OF search_tokens ON complaints_ticket "
                "FOR EACH ROW EXECUTE FUNCTION "
                "tsvector_update_trigger(search_vector, 'pg_catalog.simple', search_tokens)",
                "CREATE INDEX complaints_ticket_search_gin ON complaints_ticket "
                "USING gin (search_vector)",
            ],
            reverse_sql=[
                "DROP INDEX IF EXISTS complaints_ticket_search_gin",
                "DROP TRIGGER IF EXISTS complaints_ticket_search_vector_update "
                "ON complaints_ticket",
            ],
        ),
        migrations.RunPython(backfill_tokens, migrations.RunPython.noop),
    ]

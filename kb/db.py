"""Migration helpers for PostgreSQL-only database objects (triggers, GIN indexes)."""

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that does nothing on other databases.

    A GIN index on a tsvector in Meta.indexes breaks SQLite migrations, and SQLite has
    no triggers in plpgsql; the search falls back to the token columns there.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)

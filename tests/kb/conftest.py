"""Knowledge-base fixtures: jieba loaded once per test session, seeded reference data."""

import pytest

from kb import search, services
from kb.models import ArticleStatus
from kb.seeds import ensure_kb_reference_data


@pytest.fixture(scope="session", autouse=True)
def _jieba_loaded():
    search.ensure_ready()


@pytest.fixture
def kb_reference(reference_data):
    # Transactional tests flush what the data migration seeded; put it back.
    ensure_kb_reference_data()


@pytest.fixture
def make_article(db):
    def _make(title, body, *, tags="", status=ArticleStatus.PUBLISHED, actor=None, **extra):
        return services.article_create(
            actor=actor, title=title, body=body, tags=tags, status=status, **extra
        )

    return _make

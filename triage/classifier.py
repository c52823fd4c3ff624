"""The learned category suggestion: TF-IDF over jieba words + logistic regression.

Trained on resolved tickets (the category agents finally chose), stored as joblib bytes
in a `CategoryModel` row so every web node reads the same model; each process keeps the
unpickled newest model in memory and reloads only when a newer row appears (one small
query per suggestion). It suggests; agents decide.
"""

import io
import threading
from dataclasses import dataclass

import joblib
import sklearn
from django.db.models import Q
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from complaints.models import Category, Status, Ticket
from kb.search import index_tokens

from .models import CategoryModel

# Tickets whose category is final: the agent resolved them under it.
FINAL_STATUSES = [Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED]
MAX_TRAINING_TICKETS = 50_000
MIN_SAMPLES = 20
MIN_PER_CLASS = 2


class NotEnoughData(ValueError):
    pass


def split_tokens(text: str) -> list[str]:
    """The analyzer: documents are already space-joined jieba tokens (module-level, so the
    pickled pipeline refers to it by name)."""
    return text.split()


def tokens_of(text: str) -> str:
    return " ".join(index_tokens(text))


def build_pipeline() -> Pipeline:
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(analyzer=split_tokens, sublinear_tf=True, min_df=1, max_df=0.9),
            ),
            (
                "clf",
                LogisticRegression(
                    max_iter=1000, C=5.0, class_weight="balanced", solver="newton-cg"
                ),
            ),
        ]
    )


@dataclass(frozen=True)
class TrainingResult:
    model: CategoryModel
    samples: int
    classes: int
    holdout_accuracy: float | None


def training_data(limit: int = MAX_TRAINING_TICKETS) -> tuple[list[str], list[int]]:
    """(token strings, category ids) of the newest resolved tickets with a leaf category."""
    rows = (
        Ticket.objects.filter(status__in=FINAL_STATUSES, category__isnull=False)
        .filter(Q(category__is_active=True))
        .order_by("-resolved_at", "-id")
        .values_list("search_tokens", "subject", "body", "category_id")[:limit]
    )
    docs, labels = [], []
    for tokens, subject, body, category_id in rows:
        text = tokens.strip() or tokens_of(f"{subject}\n{body}")
        if text:
            docs.append(text)
            labels.append(category_id)
    return docs, labels


def fit(docs: list[str], labels: list) -> tuple[Pipeline, float | None]:
    """Fit on everything; the accuracy first measured on a 20% held-out split (if big enough)."""
    counts = {label: labels.count(label) for label in set(labels)}
    if len(docs) < MIN_SAMPLES or len(counts) < 2:
        raise NotEnoughData(
            f"Need at least {MIN_SAMPLES} resolved tickets in 2+ categories "
            f"(have {len(docs)} in {len(counts)})."
        )
    keep = [i for i, label in enumerate(labels) if counts[label] >= MIN_PER_CLASS]
    docs, labels = [docs[i] for i in keep], [labels[i] for i in keep]
    accuracy = None
    if len(docs) >= 50:
        x_train, x_test, y_train, y_test = train_test_split(
            docs, labels, test_size=0.2, random_state=42, stratify=labels
        )
        accuracy = float(build_pipeline().fit(x_train, y_train).score(x_test, y_test))
    return build_pipeline().fit(docs, labels), accuracy


def dumps(pipeline: Pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return buffer.getvalue()


def loads(payload: bytes) -> Pipeline:
    return joblib.load(io.BytesIO(bytes(payload)))


def train_and_store() -> TrainingResult:
    docs, labels = training_data()
    pipeline, accuracy = fit(docs, labels)
    model = CategoryModel.objects.create(
        samples=len(docs),
        classes=len(pipeline.classes_),
        holdout_accuracy=accuracy,
        library=f"scikit-learn {sklearn.__version__}",
        payload=dumps(pipeline),
    )
    # Keep the newest few rows only: a model is a few hundred kB.
    old = CategoryModel.objects.order_by("-created_at", "-id").values_list("pk", flat=True)[3:]
    CategoryModel.objects.filter(pk__in=list(old)).delete()
    _cache.clear()
    return TrainingResult(model, len(docs), len(pipeline.classes_), accuracy)


# --- prediction ---------------------------------------------------------------------------

_cache: dict[int, Pipeline] = {}
_cache_lock = threading.Lock()


def current_model() -> tuple[int, Pipeline] | None:
    """The newest stored model, unpickled once per process."""
    newest = CategoryModel.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    model_id = newest.first()
    if model_id is None:
        return None
    pipeline = _cache.get(model_id)
    if pipeline is None:
        with _cache_lock:
            pipeline = _cache.get(model_id)
            if pipeline is None:
                payload = CategoryModel.objects.values_list("payload", flat=True).get(pk=model_id)
                pipeline = loads(payload)
                _cache.clear()
                _cache[model_id] = pipeline
    return model_id, pipeline


@dataclass(frozen=True)
class Prediction:
    model_id: int | None
    category: Category
    confidence: float


def predict_tokens(pipeline: Pipeline, tokens: str) -> list[tuple[int, float]]:
    """(category id, probability), best first."""
    probabilities = pipeline.predict_proba([tokens])[0]
    ranked = sorted(zip(pipeline.classes_, probabilities, strict=True), key=lambda p: -p[1])
    return [(int(label), float(p)) for label, p in ranked]


def predict(tokens: str) -> Prediction | None:
    """The best active leaf category for the tokens, or None without a model."""
    loaded = current_model()
    if loaded is None or not tokens.strip():
        return None
    model_id, pipeline = loaded
    ranked = predict_tokens(pipeline, tokens)
    usable = {
        c.pk: c
        for c in Category.objects.filter(
            pk__in=[label for label, _p in ranked[:5]], is_active=True, children__isnull=True
        ).select_related("parent")
    }
    for label, probability in ranked:
        if label in usable:
            return Prediction(model_id, usable[label], probability)
    return None

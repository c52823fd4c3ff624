"""Chinese full-text search over knowledge articles and tickets.

Text is normalized (NFKC, lower case, traditional → simplified with OpenCC) and
segmented with jieba's dictionary, without its HMM guessing of unknown words: the HMM
guesses differently for a word alone (a query) and in a sentence (a document), so
"原路" would be one word in an article and two in the query; the documents keep their search-mode tokens (which include the
precise-mode words plus their dictionary sub-words) in token columns, queries use the
precise-mode words. Each query word is expanded with its admin-defined synonyms: OR
within a synonym group, AND across words. Quoted phrases must appear contiguously.

PostgreSQL: a stored `simple`-config tsvector filled by a trigger from the token
columns, GIN-indexed, ranked with ts_rank (title A > tags B > body C). SQLite: the
same words matched against the token columns (`LIKE '% word %'`) and scored in Python.
Both back ends return the same `SearchPage`, with snippets highlighted by `highlight`.

Common words cost a bounded amount of work, like a helpdesk search: at most
`COUNT_CAP` matches are counted (more show as "1,000+"), and when more match, the
ranked pool is the first `RANK_WINDOW` matches plus the articles whose title holds the
words (`TITLE_CANDIDATES`, through a title-only index), instead of every match; quoted
phrases are then checked on those rows only (see `_search_postgres`). Queries with up
to `COUNT_CAP` matches are ranked and counted exactly as before.
"""

import logging
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba
import opencc
from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Func, Q, Value
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from complaints.refcache import ReferenceCache

MAX_QUERY_LENGTH = 200
MAX_QUERY_WORDS = 12
# Matches beyond this are not counted: the total shows as "1,000+" (`total_capped`).
COUNT_CAP = 1000
# When more than COUNT_CAP rows match, the ranked pool is the first RANK_WINDOW matches
# plus up to TITLE_CANDIDATES rows whose title alone matches (title hits rank first:
# title weight A against body weight C).
RANK_WINDOW = 300
TITLE_CANDIDATES = 300
# The SQLite fallback scores at most this many matching rows (the newest).
FALLBACK_CANDIDATES = 2000

# Words that carry no meaning in a query; dropped unless the query has nothing else.
_STOPWORDS_TEXT = (
    "的 了 吗 呢 啊 吧 呀 是 和 与 及 或 在 就 都 也 还 又 很 太 我 我们 你 您 他 她 它 他们 这 那 "
    "这个 那个 一个 有 没 不 被 把 给 让 请 问 怎么 什么 如何 为什么 多久 多长 几天 能 能否 可以 是否 会 要 需要 哪里 哪些 怎样 怎么办 办 a an the of to is and or"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_lock = threading.Lock()
_converters: dict[str, opencc.OpenCC] = {}
_t2s: dict[int, str] = {}
_ready: list[bool] = []  # non-empty once loaded
_WORD_CHAR = re.compile(r"\w")
_ALNUM_SPLIT = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
_QUOTED = re.compile(r'"([^"]*)"|“([^”]*)”|「([^」]*)」|『([^』]*)』')
_MARKDOWN_NOISE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|[#*>`_~|]+")


def _t2s_table() -> dict[int, str]:
    """OpenCC's traditional → simplified character table, for str.translate.

    Character by character (not OpenCC's phrase segmentation, which is pure Python
    and costs milliseconds per text): both documents and queries go through the same
    table, so they always agree, and it keeps every text's length.
    """
    path = Path(opencc.__file__).with_name("dictionary") / "TSCharacters.txt"
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        source, _tab, targets = line.partition("\t")
        target = targets.split(" ")[0] if targets else ""
        if len(source) == 1 and len(target) == 1 and source != target:
            table[ord(source)] = target
    return table


def ensure_ready() -> None:
    """Load jieba's dictionary and the OpenCC tables once per process (~1 s)."""
    if _ready:
        return
    with _lock:
        if _ready:
            return
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _converters["s2t"] = opencc.OpenCC("s2t")
        _t2s.update(_t2s_table())
        _ready.append(True)


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, traditional to simplified Chinese."""
    ensure_ready()
    return unicodedata.normalize("NFKC", text or "").lower().translate(_t2s)


def to_traditional(text: str) -> str:
    ensure_ready()
    return _converters["s2t"].convert(text)


def _is_word(token: str) -> bool:
    return bool(token) and bool(_WORD_CHAR.search(token))


def index_tokens(text: str) -> list[str]:
    """Search-mode tokens of a document (punctuation and spaces dropped).

    Mixed letter-digit tokens (iphone15) are also indexed by their parts, so a query
    "iPhone 15" finds them.
    """
    tokens = []
    for token in jieba.cut_for_search(normalize(text), HMM=False):
        token = token.strip()
        if not _is_word(token):
            continue
        tokens.append(token)
        parts = _ALNUM_SPLIT.findall(token)
        if len(parts) > 1 and "".join(parts) == token:
            tokens.extend(parts)
    return tokens


def query_words(text: str) -> list[str]:
    """Precise-mode words of a query, without punctuation, duplicates or stopwords."""
    words = [w.strip() for w in jieba.cut(normalize(text), HMM=False)]
    words = list(dict.fromkeys(w for w in words if _is_word(w)))
    meaningful = [w for w in words if w not in STOPWORDS]
    return meaningful or words


def padded(tokens: list[str]) -> str:
    """Space-joined tokens with a space at each end: `" word "` matches a whole token."""
    return f" {' '.join(tokens)} " if tokens else ""


def article_tokens(*, title: str, tags: str, body: str) -> dict[str, str]:
    return {
        "title_tokens": padded(index_tokens(title)),
        "tags_tokens": padded(index_tokens(tags.replace(",", " ").replace("，", " "))),
        "body_tokens": padded(index_tokens(body)),
    }


def ticket_tokens(*, subject: str, body: str) -> str:
    return padded(index_tokens(subject) + index_tokens(body))


# --- queries ----------------------------------------------------------------------


@dataclass
class ParsedQuery:
    groups: list[list[str]] = field(default_factory=list)  # AND across, OR within
    phrases: list[str] = field(default_factory=list)  # normalized, must appear as is

    @property
    def empty(self) -> bool:
        return not self.groups and not self.phrases

    @property
    def highlight_terms(self) -> list[str]:
        terms = {w for group in self.groups for w in group} | set(self.phrases)
        return sorted(terms, key=len, reverse=True)


def _load_synonym_map() -> dict[str, list[str]]:
    from .models import SynonymGroup

    mapping: dict[str, list[str]] = {}
    for group in SynonymGroup.objects.only("words"):
        words = [normalize(w) for w in group.word_list]
        for word in words:
            mapping.setdefault(word, [])
            mapping[word].extend(w for w in words if w not in mapping[word])
    return mapping


# Kept per process like the other small reference tables; saving or deleting a group
# reloads it in every process (watched in kb.apps), at the latest after 60 s.
synonyms_cache = ReferenceCache("kb-synonyms", _load_synonym_map, max_age=60)


def synonym_map() -> dict[str, list[str]]:
    """Normalized word → every word of its synonym groups (read-only)."""
    return synonyms_cache.get()


def parse_query(text: str, *, synonyms: dict[str, list[str]] | None = None) -> ParsedQuery:
    text = normalize((text or "")[:MAX_QUERY_LENGTH])
    phrases = []
    for match in _QUOTED.finditer(text):
        phrase = next(g for g in match.groups() if g is not None).strip()
        if phrase:
            phrases.append(phrase)
    rest = _QUOTED.sub(" ", text)
    words = query_words(rest)
    # Phrase words also go into the word groups so the index narrows the candidates.
    for phrase in phrases:
        words.extend(w for w in query_words(phrase) if w not in words)
    if synonyms is None:
        synonyms = synonym_map()
    groups = []
    for word in words[:MAX_QUERY_WORDS]:
        group = [word, *(s for s in synonyms.get(word, ()) if s != word)]
        groups.append(group)
    return ParsedQuery(groups=groups, phrases=phrases)


# --- the two back ends ------------------------------------------------------------


@dataclass(frozen=True)
class SearchIndex:
    """How one model is searched: token columns with their weights, raw text columns.

    `title_field`, if set, is a token column with its own GIN index on PostgreSQL
    (`to_tsvector('simple', <column>)`, see kb/migrations/0004): the cheap first pass
    that keeps title hits in the ranked pool when a query matches too many rows.
    """

    token_fields: tuple[tuple[str, float], ...]
    text_fields: tuple[str, ...]
    vector_field: str = "search_vector"
    title_field: str | None = None

    @property
    def search_columns(self) -> tuple[str, ...]:
        """Columns only search reads: not loaded with the page's rows."""
        return (self.vector_field, *(name for name, _weight in self.token_fields))


ARTICLE_INDEX = SearchIndex(
    token_fields=(("title_tokens", 1.0), ("tags_tokens", 0.4), ("body_tokens", 0.2)),
    text_fields=("title", "tags", "body"),
    title_field="title_tokens",
)
TICKET_INDEX = SearchIndex(token_fields=(("search_tokens", 1.0),), text_fields=("subject", "body"))


@dataclass
class Hit:
    obj: Any
    score: float
    snippet: SafeString = mark_safe("")  # noqa: S308 - an empty string


@dataclass
class Found:
    """What `run_search` returns: one page of rows and what is known about the rest."""

    rows: list[tuple[Any, float]]  # (row, score), best first
    total: int  # matches counted, at most COUNT_CAP
    capped: bool = False  # more match than `total` (counting stopped)
    ranked: int | None = None  # size of the ranked pool when smaller than the matches


@dataclass
class SearchPage:
    hits: list[Hit]
    total: int  # at most COUNT_CAP
    page: int
    per_page: int
    query: ParsedQuery
    total_capped: bool = False  # more than `total` match; they were not counted
    ranked: int | None = None  # pages go as far as the ranked pool (None: every match)

    @property
    def num_pages(self) -> int:
        reachable = self.total if self.ranked is None else min(self.total, self.ranked)
        return max(1, -(-reachable // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages


def _phrase_filter(index: SearchIndex, phrases: list[str]) -> Q:
    condition = Q()
    for phrase in phrases:
        variants = {phrase, to_traditional(phrase)}
        # Chinese and digits have no case: a plain LIKE compares bytes, while a
        # case-insensitive one upper-cases every body it reads (3x slower on PostgreSQL).
        lookup = "icontains" if phrase.upper() != phrase.lower() else "contains"
        any_field = Q()
        for name in index.text_fields:
            for variant in sorted(variants):
                any_field |= Q(**{f"{name}__{lookup}": variant})
        condition &= any_field
    return condition


def _pg_query(groups: list[list[str]], *, match_all: bool):
    combined = None
    for group in groups:
        either = None
        for word in group:
            one = SearchQuery(word, config="simple", search_type="plain")
            either = one if either is None else either | one
        if combined is None:
            combined = either
        else:
            combined = combined & either if match_all else combined | either
    return combined


class _TitleVector(Func):
    """`to_tsvector('simple', <title tokens>)`: the expression of the title-only GIN index."""

    function = "to_tsvector"
    template = "%(function)s('pg_catalog.simple'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


def _compile(queryset, expression) -> tuple[str, tuple]:
    query = queryset.query
    sql, params = query.get_compiler(connection=connection).compile(
        expression.resolve_expression(query)
    )
    return sql, tuple(params)


def _search_postgres(queryset, index, parsed, *, match_all, offset, limit) -> Found:
    """The capped count and one ranked page over a bounded pool, in one statement.

    `matched` is the first COUNT_CAP + 1 matches in table order. Up to COUNT_CAP, every
    one is ranked (the exact top, as without a cap). Beyond, ts_rank (which reads each
    row's vector, the costly part) runs on the first RANK_WINDOW of them plus up to
    TITLE_CANDIDATES rows whose title matches, found through the small title index (a
    title match implies a match).

    Quoted phrases are checked on those same rows (the raw-text check reads every body):
    if the window of word matches is full, the phrase matches found are a lower bound
    (capped). Only if that leaves the page short does a second statement check the
    phrase on every word match, so a rare phrase among common words is still found.
    """
    found = _pg_statement(queryset, index, parsed, match_all, offset, limit, phrase_window=True)
    if parsed.phrases and found.capped and len(found.rows) < limit:
        found = _pg_statement(
            queryset, index, parsed, match_all, offset, limit, phrase_window=False
        )
    return found


def _pg_statement(queryset, index, parsed, match_all, offset, limit, *, phrase_window) -> Found:
    query = _pg_query(parsed.groups, match_all=match_all)
    base = queryset.select_related(None).order_by()
    phrase = _phrase_filter(index, parsed.phrases)
    phrase_column = bool(parsed.phrases) and phrase_window
    if phrase_column:
        # Checked as a column on the window's rows, not as a filter that scans on.
        base = base.annotate(search_ok=ExpressionWrapper(phrase, output_field=BooleanField()))
    else:
        base = base.filter(phrase).annotate(search_ok=Value(True))
    columns = ("pk", index.vector_field, "search_ok")
    matched = base.filter(**{index.vector_field: query}).values_list(*columns)
    matched_sql, params = matched[: COUNT_CAP + 1].query.sql_with_params()
    tsquery_sql, tsquery_params = _compile(base, query)
    # (S608: every SQL piece is compiled by the ORM; every value is a parameter.)
    titled_cte, titled_pool = "", ""
    if index.title_field:
        titled = (
            base.alias(search_title=_TitleVector(index.title_field))
            .filter(search_title=query)
            .values_list(*columns)[:TITLE_CANDIDATES]
        )
        titled_sql, titled_params = titled.query.sql_with_params()
        # The one-time filter skips the title pass unless the count reached the cap.
        titled_cte = (
            f", titled (pk, v, ok) AS (SELECT * FROM ({titled_sql}) AS t "  # noqa: S608
            "WHERE (SELECT n FROM counted) > %s)"
        )
        params = (*params, *titled_params, COUNT_CAP)
        titled_pool = " UNION ALL SELECT pk, v FROM titled WHERE ok"
    # Matches found: every row of `matched`, or those holding the phrase (a lower bound
    # when the window is full, so the title pass's count too).
    hits_sql = "(SELECT n FROM counted)"
    if phrase_column:
        found = "matched WHERE ok UNION SELECT pk FROM titled" if titled_cte else "matched"
        hits_sql = f"(SELECT count(*) FROM (SELECT pk FROM {found} WHERE ok) AS ok)"  # noqa: S608
    sql = (
        f"WITH matched (pk, v, ok) AS MATERIALIZED ({matched_sql}), "  # noqa: S608
        "counted AS (SELECT count(*) AS n FROM matched)"
        f"{titled_cte}, "
        "pool AS (SELECT pk, v FROM (SELECT pk, v FROM matched WHERE ok "
        "LIMIT CASE WHEN (SELECT n FROM counted) > %s THEN %s END) AS w"
        f"{titled_pool}), "
        # Normalization 1 divides by 1 + log(length): long bodies do not win by size.
        f"ranked AS (SELECT pk, max(ts_rank(v, {tsquery_sql}, 1)) AS score FROM pool GROUP BY pk) "
        # One row at least (pk NULL: an empty page), so the counts need no second query.
        f"SELECT pk, score, (SELECT n FROM counted), {hits_sql}, (SELECT count(*) FROM ranked) "
        "FROM (SELECT 1) AS one LEFT JOIN (SELECT pk, score FROM ranked "
        "ORDER BY score DESC, pk DESC LIMIT %s OFFSET %s) AS page ON true "
        "ORDER BY score DESC, pk DESC"
    )
    params = (*params, COUNT_CAP, RANK_WINDOW, *tsquery_params, limit, offset)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        page = cursor.fetchall()
    _pk, _score, words, hits, ranked = page[0]
    page = [row for row in page if row[0] is not None]
    capped = words > COUNT_CAP
    objects = queryset.defer(*index.search_columns).in_bulk([row[0] for row in page])
    rows = [(objects[row[0]], float(row[1])) for row in page if row[0] in objects]
    return Found(rows, min(hits, COUNT_CAP), capped, ranked if capped else None)


def _fallback_score(row, index, groups) -> float:
    score = 0.0
    for group in groups:
        best = 0.0
        for word in group:
            needle = f" {word} "
            value = 0.0
            for name, weight in index.token_fields:
                count = getattr(row, name).count(needle)
                if count:
                    value += weight * (1 + min(count, 5) / 5)
            best = max(best, value)
        score += best
    return score


def _token_condition(groups, names, *, match_all) -> Q:
    condition = Q()
    for group in groups:
        either = Q()
        for word in group:
            for name in names:
                either |= Q(**{f"{name}__contains": f" {word} "})
        condition = (condition & either) if match_all else (condition | either)
    return condition


def _search_fallback(queryset, index, parsed, *, match_all, offset, limit):
    names = [name for name, _weight in index.token_fields]
    qs = (
        queryset.select_related(None)
        .filter(_phrase_filter(index, parsed.phrases))
        .order_by("-pk")
        .only("pk", *names)
    )
    matched = list(
        qs.filter(_token_condition(parsed.groups, names, match_all=match_all))[:FALLBACK_CANDIDATES]
    )
    candidates = matched
    if len(matched) == FALLBACK_CANDIDATES and index.title_field:
        # Not every match is scored: add the title matches, as on PostgreSQL.
        title_condition = _token_condition(parsed.groups, [index.title_field], match_all=match_all)
        seen = {row.pk for row in matched}
        candidates = matched + [
            row for row in qs.filter(title_condition)[:TITLE_CANDIDATES] if row.pk not in seen
        ]
    scored = sorted(
        ((row.pk, _fallback_score(row, index, parsed.groups)) for row in candidates),
        key=lambda item: (-item[1], -item[0]),
    )
    page = scored[offset : offset + limit]
    objects = queryset.defer(*index.search_columns).in_bulk([pk for pk, _score in page])
    rows = [(objects[pk], score) for pk, score in page if pk in objects]
    capped = len(matched) > COUNT_CAP
    return Found(rows, min(len(matched), COUNT_CAP), capped, len(scored) if capped else None)


def run_search(
    queryset,
    index: SearchIndex,
    parsed: ParsedQuery,
    *,
    match_all: bool = True,
    offset: int = 0,
    limit: int = 20,
) -> Found:
    """One page of rows with scores, best first, and the (capped) number of matches."""
    if not parsed.groups:
        return Found([], 0)
    if connection.vendor == "postgresql":
        return _search_postgres(
            queryset, index, parsed, match_all=match_all, offset=offset, limit=limit
        )
    return _search_fallback(
        queryset, index, parsed, match_all=match_all, offset=offset, limit=limit
    )


# --- snippets ---------------------------------------------------------------------


def plain_text(markdown_text: str) -> str:
    """Markdown source without its markup characters (for snippets and insertion)."""
    text = _MARKDOWN_NOISE.sub(lambda m: m.group(1) or " ", markdown_text or "")
    return re.sub(r"\s+", " ", text).strip()


def highlight(text: str, terms: list[str], *, width: int = 90) -> SafeString:
    """A window of `text` around the first query term, every term in <mark> (escaped)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    normalized = normalize(text)
    # Positions carry over only if normalizing kept the length (it nearly always does).
    shown = text if len(normalized) == len(text) else normalized
    terms = [t for t in terms if t]
    if not terms:
        return mark_safe(escape(shown[:width]))  # noqa: S308 - escaped
    pattern = re.compile("|".join(re.escape(t) for t in terms))
    first = pattern.search(normalized)
    start = max(0, first.start() - width // 3) if first else 0
    end = min(len(shown), start + width)
    parts = ["…" if start else ""]
    cursor = start
    for match in pattern.finditer(normalized, start, end):
        parts.append(escape(shown[cursor : match.start()]))
        parts.append(f"<mark>{escape(shown[match.start() : match.end()])}</mark>")
        cursor = match.end()
    parts.append(escape(shown[cursor:end]))
    if end < len(shown):
        parts.append("…")
    return mark_safe("".join(parts))  # noqa: S308 - every piece is escaped


def salient_words(text: str, limit: int = 8) -> list[str]:
    """The words of a text most telling for "more like this": frequent, longer, no stopwords."""
    words = (w.strip() for w in jieba.cut(normalize(text), HMM=False))
    counts = Counter(w for w in words if len(w) > 1 and _is_word(w) and w not in STOPWORDS)
    ranked = sorted(counts.items(), key=lambda item: (-item[1] * len(item[0]), item[0]))
    return [word for word, _count in ranked[:limit]]

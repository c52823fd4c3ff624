"""Knowledge base: articles (versions, review cycle, feedback), SOP templates and reply
scripts, synonyms for search and the forbidden-phrase list.

Every write goes through `kb.services`; models hold data and derived read-only facts.
Search columns (`*_tokens`, `search_vector`) are filled by `kb.search`: the tokens by
Python (jieba), the vector by a PostgreSQL trigger (see migration 0001).
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from complaints.models import Category, Ticket


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class CategoryReviewPolicy(models.Model):
    """Marks a category whose knowledge changes fast (policies, carriers): its articles are
    reviewed every CLOSELOOP_KB_FAST_REVIEW_DAYS instead of CLOSELOOP_KB_REVIEW_DAYS."""

    category = models.OneToOneField(
        Category,
        verbose_name=_("category"),
        on_delete=models.CASCADE,
        related_name="kb_review_policy",
    )
    fast_moving = models.BooleanField(
        _("fast-moving"),
        default=True,
        help_text=_("Articles of fast-moving categories are due for review sooner."),
    )

    class Meta:
        verbose_name = _("category review policy")
        verbose_name_plural = _("category review policies")

    def __str__(self) -> str:
        return str(self.category)


class Article(models.Model):
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body (Markdown)"))
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="kb_articles",
    )
    tags = models.CharField(
        _("tags"), max_length=200, blank=True, help_text=_("Separated by commas or spaces.")
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ArticleStatus.choices,
        default=ArticleStatus.DRAFT,
        db_index=True,
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="kb_articles",
    )
    version = models.PositiveIntegerField(_("version"), default=0, editable=False)
    review_due_at = models.DateTimeField(_("review due"), null=True, blank=True, db_index=True)
    reviewed_at = models.DateTimeField(_("last reviewed"), null=True, blank=True)
    view_count = models.PositiveIntegerField(_("views"), default=0, editable=False)
    helpful_count = models.PositiveIntegerField(_("helpful"), default=0, editable=False)
    not_helpful_count = models.PositiveIntegerField(_("not helpful"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Search: jieba search-mode tokens, space-separated with a space at each end so an
    # exact token matches `contains(" token ")` (the SQLite fallback).
    title_tokens = models.TextField(default="", editable=False)
    tags_tokens = models.TextField(default="", editable=False)
    body_tokens = models.TextField(default="", editable=False)
    # PostgreSQL only: filled by a trigger (title A, tags B, body C); NULL on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("knowledge article")
        verbose_name_plural = _("knowledge articles")

    def __str__(self) -> str:
        return self.title

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.replace("，", ",").replace(",", " ").split() if t]

    def is_review_due(self, now=None) -> bool:
        return self.review_due_at is not None and self.review_due_at <= (now or timezone.now())


class ArticleVersion(models.Model):
    """What an article looked like after one save; never changed afterwards."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body (Markdown)"))
    tags = models.CharField(_("tags"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=ArticleStatus.choices)
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.SET_NULL, null=True, blank=True
    )
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("edited by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("saved at"), default=timezone.now)

    class Meta:
        ordering = ["article", "-number"]
        verbose_name = _("article version")
        verbose_name_plural = _("article versions")
        constraints = [
            models.UniqueConstraint(fields=["article", "number"], name="uniq_article_version")
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.number}"


class ArticleFeedback(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE
    )
    helpful = models.BooleanField(_("helpful"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("article feedback")
        verbose_name_plural = _("article feedback")

    def __str__(self) -> str:
        return f"{self.article_id} {'+' if self.helpful else '-'}"


class SynonymGroup(models.Model):
    """Words that mean the same to a customer (快递 物流 配送): a query for one finds all."""

    words = models.CharField(
        _("words"), max_length=300, help_text=_("Two or more words separated by spaces.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("synonym group")
        verbose_name_plural = _("synonym groups")

    def __str__(self) -> str:
        return " = ".join(self.word_list)

    @property
    def word_list(self) -> list[str]:
        return [w for w in self.words.replace("，", " ").replace(",", " ").split() if w]


class ForbiddenPhrase(models.Model):
    """A phrase agents must never send to a customer, with the wording to use instead."""

    phrase = models.CharField(_("phrase"), max_length=100, unique=True)
    approved_wording = models.TextField(_("approved wording"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["phrase"]
        verbose_name = _("forbidden phrase")
        verbose_name_plural = _("forbidden phrases")

    def __str__(self) -> str:
        return self.phrase


# --- SOP templates and reply scripts ------------------------------------------------


class SopTemplate(models.Model):
    """The standard procedure for one category: ordered steps and reply scripts.

    The template without a category is the default for categories without their own.
    """

    category = models.OneToOneField(
        Category,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sop_template",
    )
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)
    version = models.PositiveIntegerField(_("version"), default=0, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("SOP template")
        verbose_name_plural = _("SOP templates")

    def __str__(self) -> str:
        return self.name


class SopStep(models.Model):
    template = models.ForeignKey(SopTemplate, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    title = models.CharField(_("step"), max_length=200)
    deadline_hours = models.PositiveSmallIntegerField(
        _("deadline (hours after receipt)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(2160)],
    )

    class Meta:
        ordering = ["template", "position", "id"]
        verbose_name = _("SOP step")
        verbose_name_plural = _("SOP steps")

    def __str__(self) -> str:
        return self.title


class ScriptKind(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("First response")
    SOLUTION = "solution", _("Solution")
    FOLLOW_UP = "follow_up", _("Follow-up")
    APOLOGY = "apology", _("Apology")


class ReplyScript(models.Model):
    template = models.ForeignKey(SopTemplate, on_delete=models.CASCADE, related_name="scripts")
    kind = models.CharField(_("kind"), max_length=20, choices=ScriptKind.choices)
    body = models.TextField(
        _("text"),
        help_text=_(
            "Placeholders: {customer_name}, {ticket_number}, {deadline}, {status_url}, "
            "{survey_url} (in follow-up scripts). "
            "A first response must contain {ticket_number} and {status_url}."
        ),
    )

    class Meta:
        ordering = ["template", "kind"]
        verbose_name = _("reply script")
        verbose_name_plural = _("reply scripts")
        constraints = [
            models.UniqueConstraint(fields=["template", "kind"], name="uniq_script_template_kind")
        ]

    def __str__(self) -> str:
        return f"{self.template} · {self.get_kind_display()}"


class SopTemplateVersion(models.Model):
    """A snapshot of a template (steps and scripts) after one admin save."""

    template = models.ForeignKey(SopTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    snapshot = models.JSONField(_("content"), default=dict)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("edited by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("saved at"), default=timezone.now)

    class Meta:
        ordering = ["template", "-number"]
        verbose_name = _("SOP template version")
        verbose_name_plural = _("SOP template versions")
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="uniq_sop_version")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


class SopStepCheck(models.Model):
    """A step of the SOP ticked on one ticket."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sop_checks")
    step = models.ForeignKey(SopStep, on_delete=models.CASCADE, related_name="checks")
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("done by"), on_delete=models.PROTECT
    )
    checked_at = models.DateTimeField(_("done at"), default=timezone.now)

    class Meta:
        verbose_name = _("SOP step done")
        verbose_name_plural = _("SOP steps done")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "step"], name="uniq_sop_check_ticket_step")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} · {self.step}"

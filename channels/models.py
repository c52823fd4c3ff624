import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ChannelKind(models.TextChoices):
    WECHAT = "wechat", _("WeChat official account")
    MINIPROGRAM = "miniprogram", _("Mini program")
    APP = "app", _("App")
    HOTLINE = "hotline", _("Hotline")
    WEIBO = "weibo", _("Weibo")
    DOUYIN = "douyin", _("Douyin")
    EMAIL = "email", _("E-mail")
    WEB = "web", _("Web form")
    STORE = "store", _("Offline store")
    REGULATOR = "regulator", _("Regulator 12315")
    PLATFORM = "platform", _("Complaint platform (Black Cat)")
    OTHER = "other", _("Other")


def new_channel_key() -> str:
    """Public identifier a channel sends in X-Closeloop-Key (not a secret)."""
    return "ck_" + secrets.token_hex(16)


def new_channel_secret() -> str:
    """HMAC key shared with the channel; shown once, at creation or rotation."""
    return secrets.token_urlsafe(32)


class Channel(models.Model):
    """One configured inbound channel (a WeChat account, the hotline, a store…)."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The key identifies the channel in signed intake requests; the secret signs
    # them. The signature is an HMAC, so the server needs the secret itself (a hash
    # would not do); it is never displayed after creation or rotation.
    key = models.CharField(
        _("API key"), max_length=40, unique=True, default=new_channel_key, editable=False
    )
    secret = models.CharField(
        _("API secret"), max_length=64, default=new_channel_secret, editable=False
    )
    secret_rotated_at = models.DateTimeField(_("secret set at"), default=timezone.now)

    class Meta:
        ordering = ["code"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name


class AttachmentLink(models.Model):
    """A file the channel holds (a photo in WeChat, a recording): kept as a reference."""

    ticket = models.ForeignKey(
        "complaints.Ticket", on_delete=models.PROTECT, related_name="attachment_links"
    )
    contact = models.ForeignKey(
        "complaints.Contact", on_delete=models.PROTECT, related_name="attachment_links"
    )
    url = models.URLField(_("URL"), max_length=500)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("attachment link")
        verbose_name_plural = _("attachment links")

    def __str__(self) -> str:
        return self.url


class IdentityConflict(models.Model):
    """A contact whose keys belong to two different customers.

    Intake keeps the contact on one customer (chosen by a fixed rule) and leaves
    the other customer's key where it is; merging the two customers is an explicit
    admin decision, and this row is what tells the admin to make it.
    """

    customer = models.ForeignKey(
        "complaints.Customer",
        verbose_name=_("chosen customer"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    other_customer = models.ForeignKey(
        "complaints.Customer",
        verbose_name=_("other customer"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    kind = models.CharField(_("identity kind"), max_length=20)
    external_key = models.CharField(_("key"), max_length=200)
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), on_delete=models.PROTECT, related_name="+"
    )
    contact = models.ForeignKey(
        "complaints.Contact",
        verbose_name=_("contact"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("found at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("identity conflict")
        verbose_name_plural = _("identity conflicts")

    def __str__(self) -> str:
        return f"{self.kind}: {self.external_key}"


class RegisterImport(models.Model):
    """One upload of an offline store register: previewed, then imported whole or not at all."""

    class State(models.TextChoices):
        PREVIEWED = "previewed", _("Checked, waiting for confirmation")
        IMPORTED = "imported", _("Imported")
        REFUSED = "refused", _("Refused: nothing imported")

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("imported at"), null=True, blank=True)
    file_name = models.CharField(_("file name"), max_length=200)
    file = models.FileField(_("file"), upload_to="register_imports/%Y/%m/", max_length=255)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.PREVIEWED
    )
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    error_count = models.PositiveIntegerField(_("bad rows"), default=0)
    new_tickets = models.PositiveIntegerField(_("new tickets"), default=0)
    joined_tickets = models.PositiveIntegerField(_("contacts on open tickets"), default=0)
    already_known = models.PositiveIntegerField(_("rows imported before"), default=0)
    # [{"row": 5, "column": "手机号 Phone", "reason": "…"}, …] in file order.
    errors = models.JSONField(_("problems"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("store register import")
        verbose_name_plural = _("store register imports")

    def __str__(self) -> str:
        return self.file_name

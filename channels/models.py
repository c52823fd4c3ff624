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


class Adapter(models.TextChoices):
    """How a channel's outbound messages reach the customer."""

    WEBHOOK = "webhook", _("Signed webhook to the channel")
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    CALLBACK = "callback", _("Call-back task for an agent")


# The adapter a channel uses unless an admin picks another one.
DEFAULT_ADAPTER = {
    ChannelKind.WECHAT: Adapter.WEBHOOK,
    ChannelKind.MINIPROGRAM: Adapter.WEBHOOK,
    ChannelKind.APP: Adapter.WEBHOOK,
    ChannelKind.WEIBO: Adapter.WEBHOOK,
    ChannelKind.DOUYIN: Adapter.WEBHOOK,
    ChannelKind.PLATFORM: Adapter.WEBHOOK,
    ChannelKind.EMAIL: Adapter.EMAIL,
    ChannelKind.WEB: Adapter.EMAIL,
    ChannelKind.HOTLINE: Adapter.CALLBACK,
    ChannelKind.STORE: Adapter.CALLBACK,
    ChannelKind.REGULATOR: Adapter.CALLBACK,
    ChannelKind.OTHER: Adapter.SMS,
}


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
    # Outbound delivery (channels/outbox.py): how replies reach this channel's customers.
    adapter = models.CharField(
        _("delivery adapter"),
        max_length=20,
        choices=Adapter.choices,
        blank=True,
        help_text=_("Empty: the default for the channel's kind."),
    )
    callback_url = models.URLField(
        _("callback URL"),
        max_length=500,
        blank=True,
        help_text=_("Where the signed webhook adapter posts outbound messages."),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name

    @property
    def delivery_adapter(self) -> str:
        return self.adapter or DEFAULT_ADAPTER.get(self.kind, Adapter.SMS)


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
    """One upload of an offline store register: checked whole, then imported chunk by chunk.

    A file with a bad row is refused before anything is written. A row that fails while
    importing stops the import: the chunks before it stay (`imported_rows`), and the same
    file uploaded again continues, its imported rows recognized as `already_known`.
    """

    class State(models.TextChoices):
        PREVIEWED = "previewed", _("Checked, waiting for confirmation")
        IMPORTING = "importing", _("Importing")
        IMPORTED = "imported", _("Imported")
        REFUSED = "refused", _("Refused: nothing imported")
        STOPPED = "stopped", _("Stopped: partly imported")

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
    # Rows of the file committed so far, in file order: where a resumed run continues.
    imported_rows = models.PositiveIntegerField(_("rows imported"), default=0)
    # Who confirmed the import (its rows' actor), and when it last committed a chunk: an
    # import "importing" with no progress for a while lost its worker and is resumed.
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("confirmed by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    progressed_at = models.DateTimeField(_("last progress at"), null=True, blank=True)
    # [{"row": 5, "column": "手机号 Phone", "reason": "…"}, …] in file order.
    errors = models.JSONField(_("problems"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("store register import")
        verbose_name_plural = _("store register imports")

    def __str__(self) -> str:
        return self.file_name


# --- outbound delivery -----------------------------------------------------------


class MessageKind(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("First response")
    REPLY = "reply", _("Reply")
    SOLUTION = "solution", _("Solution")
    SURVEY = "survey", _("Survey link")
    FOLLOW_UP = "follow_up", _("Follow-up reminder")


class MessageState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    DEAD = "dead", _("Undeliverable")


# States in which the outbox still owes the customer a delivery attempt.
PENDING_STATES = (MessageState.QUEUED, MessageState.FAILED)


class OutboundMessage(models.Model):
    """One message the portal owes a customer, written with the action that causes it.

    The worker claims a row (`claimed_until`) before it sends, so two workers never
    send the same message; the id travels as the idempotency key, so a channel that
    sees a message twice (a worker crashed after sending) can drop the copy.
    """

    message_id = models.UUIDField(_("message id"), unique=True, editable=False)
    ticket = models.ForeignKey(
        "complaints.Ticket",
        verbose_name=_("ticket"),
        on_delete=models.PROTECT,
        related_name="outbound_messages",
    )
    event = models.ForeignKey(
        "complaints.TimelineEvent",
        verbose_name=_("timeline event"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="outbound_messages",
    )
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), on_delete=models.PROTECT, related_name="+"
    )
    adapter = models.CharField(_("adapter"), max_length=20, choices=Adapter.choices)
    recipient_kind = models.CharField(_("recipient kind"), max_length=20, blank=True)
    recipient = models.CharField(_("recipient"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=MessageKind.choices)
    body = models.TextField(_("text"))
    state = models.CharField(
        _("state"), max_length=20, choices=MessageState.choices, default=MessageState.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_until = models.DateTimeField(_("being sent until"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    provider_ref = models.CharField(_("provider reference"), max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        indexes = [
            # The retry sweep: only rows that are still owed and due.
            models.Index(
                fields=["next_attempt_at"],
                name="outbound_due",
                condition=models.Q(state__in=["queued", "failed"]),
            ),
            models.Index(fields=["ticket", "kind"], name="outbound_ticket_kind"),
            models.Index(fields=["state", "created_at"], name="outbound_state"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} → {self.recipient or '?'}"

    @property
    def is_final(self) -> bool:
        return self.state in (MessageState.DELIVERED, MessageState.DEAD) or (
            self.state == MessageState.FAILED and self.next_attempt_at is None
        )

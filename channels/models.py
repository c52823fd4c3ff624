from django.db import models
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


class Channel(models.Model):
    """One configured inbound channel (a WeChat account, the hotline, a store…)."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name

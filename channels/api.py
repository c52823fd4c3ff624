"""Signed intake API: `POST /api/v1/intake/`, one door for every channel.

The channel signs `timestamp + "." + raw body` with its secret (HMAC-SHA256, hex).
The view checks size, signature and rate, then hands the contact to
`channels.services.intake_submit`, which owns every rule.
"""

import hashlib
import hmac
import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from complaints.api import JSONParser
from complaints.serializers import ErrorOutput
from complaints.services import status_url

from . import outbox, selectors, services
from .models import Channel

KEY_HEADER = "X-Closeloop-Key"
TIMESTAMP_HEADER = "X-Closeloop-Timestamp"
SIGNATURE_HEADER = "X-Closeloop-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a channel sends: hex HMAC-SHA256(secret, timestamp + "." + body)."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request body is too large.")
    default_code = "payload_too_large"


def _check_size(length: int) -> None:
    if length > settings.CLOSELOOP_INTAKE_MAX_BYTES:
        raise PayloadTooLarge(
            _("The request body is larger than %(kb)d KB.")
            % {"kb": settings.CLOSELOOP_INTAKE_MAX_BYTES // 1024}
        )


class ChannelSignatureAuthentication(BaseAuthentication):
    """Authenticates a channel (request.auth) by its key and HMAC signature."""

    def authenticate(self, request):
        meta = request.META
        key = meta.get("HTTP_X_CLOSELOOP_KEY", "").strip()
        timestamp = meta.get("HTTP_X_CLOSELOOP_TIMESTAMP", "").strip()
        signature = meta.get("HTTP_X_CLOSELOOP_SIGNATURE", "").strip()
        if not (key and timestamp and signature):
            raise exceptions.AuthenticationFailed(
                _("Sign the request: send %(headers)s.")
                % {"headers": ", ".join((KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))}
            )
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise exceptions.AuthenticationFailed(_("The timestamp must be unix seconds."))
        window = settings.CLOSELOOP_INTAKE_REPLAY_WINDOW_SECONDS
        if abs(time.time() - int(timestamp)) > window:
            raise exceptions.AuthenticationFailed(
                _(
                    "The timestamp is more than %(minutes)d minutes away from the server's "
                    "clock; sign the request again with the current time."
                )
                % {"minutes": window // 60}
            )
        body = request._request.body  # Django's own limit raises RequestDataTooBig (413)
        _check_size(len(body))
        channel = selectors.channel_for_key(key)
        # Compare even for an unknown key, so timing does not tell which keys exist.
        expected = sign(channel.secret if channel else "unknown-key", timestamp, body)
        valid = hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace"))
        if channel is None or not channel.is_active or not valid:
            raise exceptions.AuthenticationFailed(
                _("Unknown or inactive channel key, or a wrong signature.")
            )
        return AnonymousUser(), channel

    def authenticate_header(self, request):
        # Any value makes DRF answer 401 (not 403) when authentication fails.
        return 'Closeloop-HMAC realm="intake"'


class ChannelSignatureScheme(OpenApiAuthenticationExtension):
    target_class = ChannelSignatureAuthentication
    name = "channelSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": KEY_HEADER,
            "description": (
                f"The channel's key in `{KEY_HEADER}`, the unix time in `{TIMESTAMP_HEADER}`, "
                f"and in `{SIGNATURE_HEADER}` the hex HMAC-SHA256 of "
                '`timestamp + "." + raw body` keyed with the channel\'s secret. '
                "Requests more than 5 minutes off the server clock are refused."
            ),
        }


class IsSignedChannel(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, Channel)


class ChannelRateThrottle(BaseThrottle):
    """A fixed-window counter per channel key (rate: CLOSELOOP_INTAKE_RATE, 60000/minute by default).

    A counter (one cache increment) rather than DRF's history list, which grows
    with the rate and is re-serialized on every request.
    """

    PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def allow_request(self, request, view):
        channel = request.auth
        if not isinstance(channel, Channel):
            return True
        count, period = self.parse_rate(settings.CLOSELOOP_INTAKE_RATE)
        now = time.time()
        window = int(now // period)
        cache_key = f"intake-rate:{channel.pk}:{window}"
        cache.add(cache_key, 0, timeout=period * 2)
        try:
            used = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, 1, timeout=period * 2)
            used = 1
        self._wait = period - (now % period)
        return used <= count

    def wait(self):
        return self._wait

    @classmethod
    def parse_rate(cls, rate: str) -> tuple[int, int]:
        count, period = rate.split("/")
        return int(count), cls.PERIODS[period.strip()[0]]


# --- input and output --------------------------------------------------------------


class IntakeCustomerInput(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    phone = serializers.CharField(
        required=False, allow_blank=True, max_length=40, help_text="Chinese mobile or landline."
    )
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    wechat_openid = serializers.CharField(required=False, allow_blank=True, max_length=200)
    wechat_unionid = serializers.CharField(required=False, allow_blank=True, max_length=200)
    app_user_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    weibo_uid = serializers.CharField(required=False, allow_blank=True, max_length=200)


class IntakeInput(serializers.Serializer):
    external_id = serializers.CharField(
        max_length=128, help_text="The channel's message id; a repeat of it is not a new contact."
    )
    customer = IntakeCustomerInput(help_text="At least one key that identifies the customer.")
    subject = serializers.CharField(required=False, allow_blank=True, max_length=200)
    body = serializers.CharField(max_length=services.MAX_BODY_CHARS)
    order_no = serializers.CharField(required=False, allow_blank=True, max_length=64)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)
    attachments = serializers.ListField(
        child=serializers.URLField(max_length=500),
        required=False,
        max_length=services.MAX_ATTACHMENTS,
        help_text="URLs of files the channel holds; stored as references.",
    )
    category_hint = serializers.CharField(
        required=False, allow_blank=True, max_length=60, help_text="Category code or name."
    )
    # triage hook: routing rules may look at the order amount.
    order_amount = serializers.DecimalField(
        required=False,
        allow_null=True,
        max_digits=12,
        decimal_places=2,
        min_value=0,
        help_text="Order amount in CNY, for routing rules.",
    )


class IntakeOutput(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    created = serializers.BooleanField(
        help_text="True: this contact opened the ticket; false: it joined an open ticket."
    )
    replayed = serializers.BooleanField(
        help_text="True: this external_id was received before; nothing new was stored."
    )
    status_url = serializers.URLField(help_text="Self-service status page for the customer.")
    repeat_of = serializers.CharField(
        allow_null=True, help_text="Number of the closed ticket this complaint repeats."
    )


def _nested(errors: dict[str, list[str]]) -> dict:
    """`{"customer.phone": [..]}` from the service → `{"customer": {"phone": [..]}}`."""
    out: dict = {}
    for field, messages in errors.items():
        head, _dot, tail = field.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = messages
        else:
            out[head] = messages
    return out


def _header(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, description=description
    )


SIGNED_HEADERS = [
    _header(KEY_HEADER, "The channel's key (printed by `manage.py channel_create`)."),
    _header(TIMESTAMP_HEADER, "Unix time in seconds when the request was signed."),
    _header(
        SIGNATURE_HEADER,
        'Hex HMAC-SHA256 of `timestamp + "." + raw body`, keyed with the secret.',
    ),
]


class SignedChannelApi(APIView):
    """An endpoint a channel calls: HMAC-signed JSON, size-capped and rate-limited per key."""

    authentication_classes = [ChannelSignatureAuthentication]
    permission_classes = [IsSignedChannel]
    throttle_classes = [ChannelRateThrottle]
    parser_classes = [JSONParser]

    def initial(self, request, *args, **kwargs):
        # Refuse an oversized body before reading it.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        _check_size(length)
        super().initial(request, *args, **kwargs)


class IntakeApi(SignedChannelApi):
    @extend_schema(
        tags=["intake"],
        summary="Submit a contact from a channel",
        description=(
            "One contact from a channel (a WeChat message, an app complaint, a hotline call). "
            "It opens a ticket (201), or joins the customer's open ticket on the same order, "
            "or on the same category within 7 days (200, `created: false`). Sending the same "
            "`external_id` again returns the same ticket with 200 and `replayed: true` and "
            "stores nothing. A new complaint within 30 days of a closed ticket on the same "
            "order or category names it in `repeat_of`.\n\n"
            "The customer is recognized by any key (WeChat OpenID/UnionID, app user id, Weibo "
            "UID, phone, e-mail), across channels.\n\n"
            "Errors: 400 with field messages, 401 for an unknown or inactive key, a wrong "
            "signature or a timestamp outside ±5 minutes, 413 for a body over the limit "
            "(64 KB by default), 429 when the channel sends too fast, 503 while the database "
            "is unreachable (retry with the same `external_id`)."
        ),
        parameters=SIGNED_HEADERS,
        request=IntakeInput,
        responses={
            201: OpenApiResponse(IntakeOutput, description="A new ticket was opened."),
            200: OpenApiResponse(
                IntakeOutput, description="Joined an open ticket, or a replay of a known contact."
            ),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description='Bad input: `{"field": ["message", …]}`.'
            ),
            401: OpenApiResponse(ErrorOutput, description="Unknown key or bad signature."),
            413: OpenApiResponse(ErrorOutput, description="The body is over the size limit."),
            415: OpenApiResponse(ErrorOutput, description="Send application/json."),
            429: OpenApiResponse(ErrorOutput, description="Too many requests from this channel."),
            503: OpenApiResponse(
                ErrorOutput,
                description="The database is unavailable for a moment (e.g. restarting): "
                "send the same request again; the external_id keeps it idempotent.",
            ),
        },
        examples=[
            OpenApiExample(
                "WeChat message",
                request_only=True,
                value={
                    "external_id": "wx-msg-20261122-0001",
                    "customer": {"name": "王女士", "phone": "13800001234", "wechat_openid": "o6_b"},
                    "subject": "快递三天没到",
                    "body": "买的东西快递三天没有送到，客服电话也打不通。",
                    "order_no": "SO20261122001",
                    "occurred_at": "2026-11-22T10:00:00+08:00",
                    "attachments": ["https://img.example.com/a.jpg"],
                    "category_hint": "logistics",
                },
            )
        ],
    )
    def post(self, request):
        serializer = IntakeInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = services.intake_submit(channel=request.auth, **serializer.validated_data)
        except DjangoValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise serializers.ValidationError(_nested(exc.message_dict)) from exc
            raise
        ticket = result.ticket
        data = {
            "number": ticket.number,
            "status": ticket.status,
            "created": result.created,
            "replayed": result.replayed,
            "status_url": status_url(ticket),
            "repeat_of": ticket.repeat_of.number if ticket.repeat_of_id else None,
        }
        code = status.HTTP_201_CREATED if result.created and not result.replayed else 200
        return Response(IntakeOutput(data).data, status=code)


# --- delivery receipts -----------------------------------------------------------------


class ReceiptInput(serializers.Serializer):
    message_id = serializers.UUIDField(help_text="The `message_id` of the delivered webhook.")
    status = serializers.ChoiceField(
        choices=["delivered", "failed"], help_text="What became of the message."
    )
    error = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why it failed."
    )


class ReceiptOutput(serializers.Serializer):
    message_id = serializers.UUIDField()
    ticket_number = serializers.CharField()
    state = serializers.CharField(help_text="queued, sent, delivered, failed or dead.")
    delivered_at = serializers.DateTimeField(allow_null=True)


class ReceiptApi(SignedChannelApi):
    @extend_schema(
        tags=["intake"],
        summary="Report the delivery of an outbound message",
        description=(
            "A channel reports what became of a message the outbox sent to its callback URL, "
            "signed exactly like intake. `delivered` marks it delivered (for a first response, "
            "the first-response SLA counts from the time it was sent); `failed` marks it failed "
            "and warns the ticket's agent. The same receipt again is answered 200 and changes "
            "nothing; `failed` after `delivered` is a 409.\n\n"
            "Errors: 400 bad fields, 401 unknown key or bad signature, 404 this channel was "
            "sent no such message, 409 contradicting an earlier delivered receipt."
        ),
        parameters=SIGNED_HEADERS,
        request=ReceiptInput,
        responses={
            200: ReceiptOutput,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Bad input."),
            401: OpenApiResponse(ErrorOutput, description="Unknown key or bad signature."),
            404: OpenApiResponse(ErrorOutput, description="No such message for this channel."),
            409: OpenApiResponse(ErrorOutput, description="Already reported delivered."),
            413: OpenApiResponse(ErrorOutput, description="The body is over the size limit."),
            415: OpenApiResponse(ErrorOutput, description="Send application/json."),
            429: OpenApiResponse(ErrorOutput, description="Too many requests from this channel."),
        },
    )
    def post(self, request):
        serializer = ReceiptInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = outbox.receipt_record(
            channel=request.auth,
            message_id=data["message_id"],
            state=data["status"],
            error=data.get("error", ""),
        )
        return Response(
            ReceiptOutput(
                {
                    "message_id": message.message_id,
                    "ticket_number": message.ticket.number,
                    "state": message.state,
                    "delivered_at": message.delivered_at,
                }
            ).data
        )

"""One customer across channels: find the customer behind a contact's keys.

Keys are matched in a fixed order of trust: the channels' own account ids first
(WeChat UnionID, OpenID, app user id, Weibo UID), then the normalized phone, then
the e-mail address. The customer of the most trusted matching key wins; keys
that belong to another customer stay where they are and are reported as a
conflict, because merging two customers is an explicit admin decision.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.utils.translation import gettext as _

from complaints.models import Customer, CustomerIdentity, IdentityKind
from complaints.phone import normalize_phone

# Most trusted first: the order decides which customer wins when keys disagree.
KEY_ORDER = [
    IdentityKind.WECHAT_UNIONID,
    IdentityKind.WECHAT_OPENID,
    IdentityKind.APP_USER_ID,
    IdentityKind.WEIBO_UID,
    IdentityKind.DOUYIN_UID,
    IdentityKind.PHONE,
    IdentityKind.EMAIL,
]
MAX_KEY_LENGTH = 200


@dataclass
class CustomerKeys:
    """What a channel tells us about the customer, normalized."""

    name: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # IdentityKind → key

    @property
    def phone(self) -> str:
        return self.keys.get(IdentityKind.PHONE, "")

    @property
    def email(self) -> str:
        return self.keys.get(IdentityKind.EMAIL, "")


def customer_keys(*, name: str = "", prefix: str = "customer.", **raw: str | None) -> CustomerKeys:
    """Normalize and check the customer's keys; errors name the field as `prefix` + kind.

    Raises ValidationError when a phone or e-mail is malformed or no key is given.
    """
    errors: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for kind in KEY_ORDER:
        value = (raw.pop(kind.value, None) or "").strip()
        if not value:
            continue
        if kind == IdentityKind.PHONE:
            normalized = normalize_phone(value)
            if not normalized:
                errors[prefix + kind.value] = [
                    _("Not a Chinese mobile or landline number: %(value)s") % {"value": value[:40]}
                ]
                continue
            value = normalized
        elif kind == IdentityKind.EMAIL:
            value = value.lower()
            try:
                validate_email(value)
            except ValidationError:
                errors[prefix + kind.value] = [_("Enter a valid e-mail address.")]
                continue
        elif len(value) > MAX_KEY_LENGTH:
            errors[prefix + kind.value] = [_("At most %(n)d characters.") % {"n": MAX_KEY_LENGTH}]
            continue
        keys[kind] = value
    if raw:
        raise TypeError(f"unknown identity kinds: {sorted(raw)}")
    name = (name or "").strip()
    if len(name) > 100:
        errors[prefix + "name"] = [_("At most %(n)d characters.") % {"n": 100}]
    if not keys and not errors:
        errors[prefix.rstrip(".") or "customer"] = [
            _(
                "Give at least one way to recognise the customer: phone, e-mail, "
                "WeChat OpenID/UnionID, app user id or Weibo UID."
            )
        ]
    if errors:
        raise ValidationError(errors)
    return CustomerKeys(name=name, keys=keys)


@dataclass
class Resolution:
    customer: Customer
    created: bool
    # (kind, key, the other customer it belongs to) for keys that could not move.
    conflicts: list[tuple[str, str, Customer]] = field(default_factory=list)


def _matches(keys: CustomerKeys) -> list[tuple[int, int, Customer]]:
    """(trust rank, customer id, customer) for every customer a key points at."""
    condition = Q()
    for kind, key in keys.keys.items():
        condition |= Q(kind=kind, external_key=key)
    found: list[tuple[int, int, Customer]] = []
    for identity in CustomerIdentity.objects.filter(condition).select_related("customer"):
        rank = KEY_ORDER.index(identity.kind)
        found.append((rank, identity.customer_id, identity.customer))
    # Customers created by staff (or before intake existed) carry phone and e-mail
    # on the row only, without identity rows.
    rows = Q()
    if keys.phone:
        rows |= Q(phone=keys.phone)
    if keys.email:
        rows |= Q(email=keys.email)
    if rows:
        for customer in Customer.objects.filter(rows).order_by("pk")[:20]:
            kind = IdentityKind.PHONE if keys.phone and customer.phone == keys.phone else "email"
            found.append((KEY_ORDER.index(kind), customer.pk, customer))
    return sorted(found, key=lambda item: (item[0], item[1]))


def resolve_customer(keys: CustomerKeys) -> Resolution:
    """Find or create the customer and attach the new keys to them.

    Call inside a transaction. The chosen customer's row is locked so that the
    repeat rules that follow see every contact of that customer. A concurrent
    request inserting the same new key makes this raise IntegrityError; the
    caller retries and then finds the key.
    """
    matches = _matches(keys)
    if matches:
        customer_id = matches[0][1]
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        created = False
    else:
        customer = Customer.objects.create(
            name=keys.name or _("Customer"),
            phone=keys.phone,
            email=keys.email,
        )
        created = True

    if created:
        # No key matched a moment ago. If a concurrent request has committed one of
        # these keys since, this insert fails with IntegrityError and the caller's
        # retry finds that customer; reading the keys again here would instead see
        # them as another customer's and split one person in two.
        owners: dict[tuple[str, str], int] = {}
    else:
        owners = {
            (identity.kind, identity.external_key): identity.customer_id
            for identity in CustomerIdentity.objects.filter(
                Q(*[Q(kind=k, external_key=v) for k, v in keys.keys.items()], _connector=Q.OR)
            )
        }
    others = {pk: c for _rank, pk, c in matches if pk != customer.pk}
    conflicts: list[tuple[str, str, Customer]] = []
    new_identities = []
    for kind, key in keys.keys.items():
        owner = owners.get((kind, key))
        if owner is None:
            row_owner = _row_owner(kind, key, others)
            if row_owner is not None:
                conflicts.append((kind, key, row_owner))
                continue
            new_identities.append(CustomerIdentity(customer=customer, kind=kind, external_key=key))
        elif owner != customer.pk:
            conflicts.append((kind, key, others.get(owner) or Customer.objects.get(pk=owner)))
    if new_identities:
        CustomerIdentity.objects.bulk_create(new_identities)

    changed = []
    if keys.phone and not customer.phone and not _is_conflict(conflicts, IdentityKind.PHONE):
        customer.phone = keys.phone
        changed.append("phone")
    if keys.email and not customer.email and not _is_conflict(conflicts, IdentityKind.EMAIL):
        customer.email = keys.email
        changed.append("email")
    if changed:
        customer.save(update_fields=changed)
    return Resolution(customer=customer, created=created, conflicts=conflicts)


def _row_owner(kind: str, key: str, others: dict[int, Customer]) -> Customer | None:
    """Another matched customer whose row (not an identity) carries this phone/e-mail."""
    for other in others.values():
        if (kind == IdentityKind.PHONE and other.phone == key) or (
            kind == IdentityKind.EMAIL and other.email == key
        ):
            return other
    return None


def _is_conflict(conflicts, kind) -> bool:
    return any(c[0] == kind for c in conflicts)

"""Chinese phone numbers, normalized to E.164 (+86…)."""

import re

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")


def normalize_phone(raw: str) -> str:
    """Return the +86 E.164 form of a Chinese mobile or landline number, or "" if not one.

    Accepts spaces, dashes, brackets, a leading +86/0086/86 and full-width digits.
    """
    if not raw:
        return ""
    text = raw.strip().translate(
        {ord(c): ord("0") + i for i, c in enumerate("０１２３４５６７８９")}
    )
    digits = re.sub(r"[\s\-()（）.]", "", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isdigit():
        return ""
    if _MOBILE.match(digits):
        return "+86" + digits
    if _LANDLINE.match(digits):
        # Landlines are stored without the trunk prefix 0, as E.164 requires.
        return "+86" + digits[1:]
    return ""

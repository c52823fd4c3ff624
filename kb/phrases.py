"""The forbidden-phrase check on every message that goes out to a customer.

`complaints.services.ticket_reply` and `ticket_first_response` call it, so the page,
the API and the admin all refuse the same phrases.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import ForbiddenPhrase
from .search import normalize

# Spaces and common punctuation an agent might slip in to dodge the check ("系统 没提示").
_FILLER = re.compile(r"[\s,.!?;:'\"，。！？；：、“”‘’…·~\-_]+")


def _compact(text: str) -> str:
    return _FILLER.sub("", normalize(text))


def forbidden_phrase_in(text: str) -> ForbiddenPhrase | None:
    """The first active forbidden phrase the text contains, in traditional or simplified."""
    compact = _compact(text)
    if not compact:
        return None
    for phrase in ForbiddenPhrase.objects.filter(is_active=True).only("phrase", "approved_wording"):
        needle = _compact(phrase.phrase)
        if needle and needle in compact:
            return phrase
    return None


def refuse_forbidden_phrases(text: str, *, field: str = "body") -> None:
    """Raise a ValidationError on `field` naming the phrase and the approved wording."""
    phrase = forbidden_phrase_in(text)
    if phrase is not None:
        raise ValidationError(
            {
                field: [
                    _('Do not send "%(phrase)s" to a customer. Approved wording: %(approved)s')
                    % {"phrase": phrase.phrase, "approved": phrase.approved_wording}
                ]
            }
        )

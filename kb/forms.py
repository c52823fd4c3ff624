from django import forms
from django.utils.translation import gettext_lazy as _

from .search import MAX_QUERY_LENGTH


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), max_length=MAX_QUERY_LENGTH, required=False)
    scope = forms.ChoiceField(
        label=_("In"),
        choices=[("articles", _("Articles")), ("tickets", _("Tickets"))],
        required=False,
    )
    page = forms.IntegerField(min_value=1, max_value=1000, required=False)


class FeedbackForm(forms.Form):
    helpful = forms.ChoiceField(
        label=_("Was this helpful?"), choices=[("yes", _("Helpful")), ("no", _("Not helpful"))]
    )
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

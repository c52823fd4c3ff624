import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .selectors import GRANULARITIES, Filters, Lookups

MAX_DAYS = 366


class DashboardFilterForm(forms.Form):
    """Date range, team, channel, category and the volume chart's granularity."""

    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    team = forms.TypedChoiceField(label=_("Team"), coerce=int, required=False, empty_value=None)
    channel = forms.TypedChoiceField(
        label=_("Channel"), coerce=int, required=False, empty_value=None
    )
    category = forms.TypedChoiceField(
        label=_("Category"), coerce=int, required=False, empty_value=None
    )
    granularity = forms.ChoiceField(
        label=_("Volume by"),
        required=False,
        choices=[("day", _("Day")), ("week", _("Week")), ("month", _("Month"))],
    )

    def __init__(self, data, *, lookups: Lookups):
        today = timezone.localdate()
        defaults = {
            "date_from": (today - dt.timedelta(days=29)).isoformat(),
            "date_to": today.isoformat(),
            "granularity": "day",
        }
        # Missing dates fall back to the last 30 days; a given but empty date is an error.
        merged = defaults | {k: v for k, v in data.items() if k in self.base_fields}
        super().__init__(merged)
        self.lookups = lookups
        everyone = [("", _("All"))]
        self.fields["team"].choices = everyone + list(lookups.teams.items())
        self.fields["channel"].choices = everyone + list(lookups.channels.items())
        self.fields["category"].choices = everyone + lookups.category_choices

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                raise forms.ValidationError(_("The start date must not be after the end date."))
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(_("Choose at most one year."))
            if end > timezone.localdate():
                raise forms.ValidationError(_("The end date cannot be in the future."))
        if data.get("granularity") not in GRANULARITIES:
            data["granularity"] = "day"
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data
        category = data.get("category")
        return Filters(
            first=data["date_from"],
            last=data["date_to"],
            team_id=data.get("team"),
            channel_id=data.get("channel"),
            category_ids=self.lookups.roots.get(category, (category,)) if category else None,
            granularity=data["granularity"],
        )

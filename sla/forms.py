import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MAX_REPORT_DAYS = 366


class ReportRangeForm(forms.Form):
    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    @classmethod
    def default_initial(cls) -> dict:
        today = timezone.localdate()
        return {"date_from": today - dt.timedelta(days=29), "date_to": today}

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                raise forms.ValidationError(_("The start date must not be after the end date."))
            if (end - start).days >= MAX_REPORT_DAYS:
                raise forms.ValidationError(_("Choose at most one year."))
        return data

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in local time: from the first day's midnight to after the last day."""
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(self.cleaned_data["date_from"], dt.time(0), tzinfo=tz)
        end = dt.datetime.combine(
            self.cleaned_data["date_to"] + dt.timedelta(days=1), dt.time(0), tzinfo=tz
        )
        return start, end

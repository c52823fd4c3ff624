from django import forms
from django.utils.translation import gettext_lazy as _

from channels.models import Channel
from complaints.models import Category, Impact, Level

from .models import AgentAvailability


class DryRunForm(forms.Form):
    """A pasted complaint and the facts the rules look at."""

    text = forms.CharField(
        label=_("Complaint text"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 5})
    )
    channel = forms.ModelChoiceField(
        label=_("Channel"), queryset=Channel.objects.none(), required=False
    )
    category = forms.ModelChoiceField(
        label=_("Current category"), queryset=Category.objects.none(), required=False
    )
    vip_level = forms.IntegerField(label=_("VIP level"), min_value=0, max_value=99, initial=0)
    order_amount = forms.DecimalField(
        label=_("Order amount (CNY)"),
        min_value=0,
        max_digits=12,
        decimal_places=2,
        required=False,
    )
    hour = forms.IntegerField(label=_("Hour of the day"), min_value=0, max_value=23, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = Channel.objects.filter(is_active=True).order_by("name")
        self.fields["category"].queryset = Category.objects.filter(is_active=True).select_related(
            "parent"
        )


class AcceptForm(forms.Form):
    """The three grading axes that go with an accepted category (pre-filled)."""

    amount_level = forms.TypedChoiceField(
        label=_("amount involved"), choices=Level.choices, coerce=int
    )
    impact = forms.TypedChoiceField(label=_("impact"), choices=Impact.choices, coerce=int)
    urgency = forms.TypedChoiceField(label=_("urgency"), choices=Level.choices, coerce=int)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class AvailabilityForm(forms.Form):
    status = forms.ChoiceField(choices=AgentAvailability.Status.choices)

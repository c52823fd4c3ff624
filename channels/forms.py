from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from complaints.models import Category

from .identity import customer_keys


class ComplaintForm(forms.Form):
    """The public complaint form; the intake service checks everything that matters."""

    name = forms.CharField(label=_("Your name"), max_length=100)
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    order_no = forms.CharField(label=_("Order number (if any)"), max_length=64, required=False)
    category = forms.ModelChoiceField(
        label=_("What is it about?"),
        queryset=Category.objects.filter(is_active=True, parent__isnull=True),
        required=False,
        empty_label=_("Not sure"),
    )
    body = forms.CharField(
        label=_("What happened?"), max_length=5000, widget=forms.Textarea(attrs={"rows": 6})
    )
    # A field people never see: bots that fill every input give themselves away.
    website = forms.CharField(
        label=_("Leave this empty"),
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    # Makes a double submission of the same form one complaint, not two.
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def clean_phone(self):
        # The intake service's own check, early, so every error shows at once.
        phone = self.cleaned_data["phone"]
        try:
            customer_keys(phone=phone, prefix="")
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        return phone

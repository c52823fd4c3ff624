"""Forms for the lifecycle actions, shared by the agent workspace and the admin.

They only parse input: which fields are required and what each value must be is
decided by the services, so the same messages reach pages, API and admin.
"""

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import selectors, services
from .models import Category, CompensationKind, Impact, Level, Priority, Role, Status


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value):
        if isinstance(value, dt.datetime):
            return (
                timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
                if timezone.is_aware(value)
                else value.strftime("%Y-%m-%dT%H:%M")
            )
        return value


def _grade_field(label, choices):
    return forms.TypedChoiceField(
        label=label, choices=[("", "—"), *choices], coerce=int, empty_value=None, required=False
    )


class TransitionForm(forms.Form):
    """One lifecycle action on one ticket; `run()` calls its service."""

    name: str = ""
    service = None
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, ticket, actor, **kwargs):
        self.ticket = ticket
        self.actor = actor
        kwargs.setdefault("prefix", self.name)
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("version", ticket.version)

    def payload(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("version", None)
        return data

    def run(self):
        return type(self).service(
            ticket=self.ticket.number,
            actor=self.actor,
            expected_version=self.cleaned_data.get("version"),
            **self.payload(),
        )


class CategoryChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.full_name


class ClassifyForm(TransitionForm):
    name = "classify"
    service = services.ticket_classify
    category = CategoryChoiceField(
        label=_("Category"),
        queryset=Category.objects.filter(is_active=True, children__isnull=True).select_related(
            "parent"
        ),
        required=False,
    )
    amount_level = _grade_field(
        _("Amount involved"),
        [
            (Level.LOW, _("Low (under ¥500)")),
            (Level.MEDIUM, _("Medium (¥500–5,000)")),
            (Level.HIGH, _("High (over ¥5,000)")),
        ],
    )
    impact = _grade_field(_("Impact"), Impact.choices)
    urgency = _grade_field(
        _("Urgency"),
        [
            (Level.LOW, _("Normal")),
            (Level.MEDIUM, _("Urgent")),
            (Level.HIGH, _("Critical (safety, media, regulator)")),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The options from the cached category table (no query per page; a posted choice
        # is still checked against the database by the queryset).
        field = self.fields["category"]
        field.choices = [("", field.empty_label), *selectors.category_choices(leaves_only=True)]
        if not self.is_bound and self.ticket.category_id:
            self.initial.update(
                category=self.ticket.category_id,
                amount_level=self.ticket.amount_level,
                impact=self.ticket.impact,
                urgency=self.ticket.urgency,
            )


class AssignForm(TransitionForm):
    name = "assign"
    service = services.ticket_assign
    assignee = forms.ModelChoiceField(
        label=_("Assignee"), queryset=get_user_model().objects.none(), required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = selectors.assignable_staff(self.ticket.team_id)
        self.fields["assignee"].label_from_instance = lambda u: (
            f"{u.get_full_name() or u.username} ({u.username})"
        )
        if not self.is_bound:
            self.initial.setdefault("assignee", self.actor.pk)


class FirstResponseForm(TransitionForm):
    name = "first_response"
    service = services.ticket_first_response
    promised_followup_at = forms.DateTimeField(
        label=_("Follow-up deadline told to the customer"),
        required=False,
        widget=DateTimeLocalInput,
    )
    message = forms.CharField(
        label=_("Message to the customer"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            deadline = timezone.localtime() + dt.timedelta(hours=24)
            deadline = deadline.replace(minute=0, second=0, microsecond=0)
            self.initial.setdefault("promised_followup_at", deadline)
            self.initial.setdefault("message", first_response_script(self.ticket, deadline))


def first_response_script(ticket, deadline) -> str:
    from kb.selectors import first_response_script as sop_script  # kb: admin-edited script

    if script := sop_script(ticket, deadline):
        return script
    return str(
        _(
            "Hello %(name)s, we have received your complaint (ticket %(number)s) and are working on it. "
            "We will get back to you by %(deadline)s. You can check the progress at any time at "
            "%(url)s with the ticket number and the last four digits of your phone."
        )
        % {
            "name": ticket.customer.name,
            "number": ticket.number,
            "deadline": timezone.localtime(deadline).strftime("%Y-%m-%d %H:%M"),
            "url": services.status_url(ticket),
        }
    )


class StartForm(TransitionForm):
    name = "start"
    service = services.ticket_start


class ResolveForm(TransitionForm):
    name = "resolve"
    service = services.ticket_resolve
    solution = forms.CharField(
        label=_("Solution"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    responsible_person = forms.CharField(
        label=_("Responsible person"), required=False, max_length=100
    )
    resolution_time = forms.DateTimeField(
        label=_("Solution carried out at"), required=False, widget=DateTimeLocalInput
    )
    evidence_ref = forms.CharField(
        label=_("Evidence reference"),
        required=False,
        max_length=200,
        help_text=_("e.g. a waybill, refund or recording number"),
    )
    evidence_file = forms.FileField(label=_("Evidence file"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("resolution_time", timezone.localtime())
            self.initial.setdefault(
                "responsible_person", self.actor.get_full_name() or self.actor.get_username()
            )

    def payload(self) -> dict:
        data = super().payload()
        data.pop("evidence_file", None)
        return data

    def run(self):
        # An uploaded file counts as the evidence; a refused resolution rolls it back.
        with transaction.atomic():
            if self.cleaned_data.get("evidence_file"):
                services.attachment_add(
                    ticket=self.ticket.number,
                    actor=self.actor,
                    uploaded=self.cleaned_data["evidence_file"],
                )
            return super().run()


class FollowUpForm(TransitionForm):
    name = "follow_up"
    service = services.ticket_follow_up
    note = forms.CharField(
        label=_("Call-back record"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class CloseForm(TransitionForm):
    name = "close"
    service = services.ticket_close


class ReopenForm(TransitionForm):
    name = "reopen"
    service = services.ticket_reopen
    reason = forms.CharField(
        label=_("Reason"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class MergeForm(TransitionForm):
    name = "merge"
    service = services.ticket_merge
    into = forms.CharField(label=_("Merge into ticket number"), required=False, max_length=24)


class EscalateForm(TransitionForm):
    name = "escalate"
    reason = forms.CharField(
        label=_("Reason"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def run(self):
        return services.ticket_escalate(
            ticket=self.ticket.number,
            actor=self.actor,
            reason=self.cleaned_data["reason"],
            expected_version=self.cleaned_data.get("version"),
        )


TRANSITION_FORMS = {
    form.name: form
    for form in (
        ClassifyForm,
        AssignForm,
        FirstResponseForm,
        StartForm,
        ResolveForm,
        FollowUpForm,
        CloseForm,
        ReopenForm,
        MergeForm,
        EscalateForm,
    )
}


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Reply"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    internal = forms.BooleanField(
        label=_("Internal note (not sent to the customer)"), required=False
    )


class AttachmentForm(forms.Form):
    file = forms.FileField(label=_("Evidence file"))


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Status.choices]
    )
    category = forms.ModelChoiceField(
        label=_("Category"),
        required=False,
        queryset=Category.objects.filter(is_active=True).select_related("parent"),
        empty_label=_("All categories"),
    )
    priority = forms.TypedChoiceField(
        label=_("Priority"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("All priorities")), *Priority.choices],
    )
    channel = forms.CharField(label=_("Channel"), required=False)
    sort = forms.ChoiceField(
        label=_("Sort"),
        required=False,
        choices=[
            ("priority", _("Priority, then due time")),
            ("due", _("Due time")),
            ("newest", _("Newest")),
        ],
    )

    def __init__(self, *args, channels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].widget = forms.Select(
            choices=[("", _("All channels")), *[(c.code, c.name) for c in channels]]
        )
        # The options from the cached category table; a choice is checked by the queryset.
        self.fields["category"].choices = [
            ("", self.fields["category"].empty_label),
            *selectors.category_choices(),
        ]


# --- compensation and collaboration tasks -----------------------------------------------


class CompensationForm(forms.Form):
    """Grant (or request approval for) compensation; amounts are checked by the service."""

    kind = forms.ChoiceField(label=_("Kind"), choices=CompensationKind.choices)
    amount = forms.CharField(
        label=_("Amount (¥)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "10.00"}),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )
    mode = forms.ChoiceField(
        choices=[("grant", "grant"), ("request", "request")], required=False, initial="grant"
    )


class DecisionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": _("Reason (required to reject)")}),
    )


class TaskOpenForm(forms.Form):
    """Open tasks for one or more departments (多部门会诊), one responsibility line each."""

    instruction = forms.CharField(
        label=_("Instruction"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What the departments must do, and what the customer was promised."),
    )

    def __init__(self, *args, departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.departments = list(departments)
        for department in self.departments:
            self.fields[f"dept_{department.code}"] = forms.BooleanField(
                label=department.name, required=False
            )
            self.fields[f"resp_{department.code}"] = forms.CharField(
                label=_("Responsibility"),
                required=False,
                max_length=200,
                widget=forms.TextInput(attrs={"placeholder": _("e.g. check the delivery record")}),
            )

    def rows(self):
        """(department, checkbox, responsibility) per department, for the template."""
        return [(d, self[f"dept_{d.code}"], self[f"resp_{d.code}"]) for d in self.departments]

    def specs(self) -> list:
        chosen = []
        for department in self.departments:
            if self.cleaned_data.get(f"dept_{department.code}"):
                chosen.append(
                    services.TaskSpec(
                        department=department,
                        responsibility=self.cleaned_data.get(f"resp_{department.code}", ""),
                    )
                )
        return chosen


class TaskTextForm(forms.Form):
    """The one text a task action takes (note, result, return or cancel reason…)."""

    text = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )


class TaskReassignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("Give to"), queryset=get_user_model().objects.none())

    def __init__(self, *args, department_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (
            get_user_model()
            .objects.filter(
                is_active=True,
                profile__role=Role.DEPARTMENT,
                profile__department_id=department_id,
            )
            .order_by("username")
        )

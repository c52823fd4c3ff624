from django.urls import path, re_path

from channels.api import IntakeApi, ReceiptApi
from kb.api import KbSearchApi
from sla.api import RiskAlertAcknowledgeApi, RiskAlertListApi

from . import api

# Ticket numbers are letters, digits and dashes (TS20261122-000123); anything else
# (a NUL byte, a slash) is a 404 before it reaches a query.
NUMBER = r"(?P<number>[-\w]{1,40})"
# Row ids: digits only, short enough for a 64-bit column.
ID = r"(?P<id>[0-9]{1,18})"

urlpatterns = [
    path("auth/token/", api.TokenObtainApi.as_view(), name="api-token"),
    path("intake/", IntakeApi.as_view(), name="api-intake"),
    path("channels/receipts/", ReceiptApi.as_view(), name="api-channel-receipts"),
    path("tickets/", api.TicketListApi.as_view(), name="api-ticket-list"),
    re_path(rf"^tickets/{NUMBER}/$", api.TicketDetailApi.as_view(), name="api-ticket-detail"),
    re_path(
        rf"^tickets/{NUMBER}/transitions/(?P<name>\w{{1,40}})/$",
        api.TicketTransitionApi.as_view(),
        name="api-ticket-transition",
    ),
    re_path(
        rf"^tickets/{NUMBER}/replies/$", api.TicketReplyApi.as_view(), name="api-ticket-replies"
    ),
    re_path(
        rf"^tickets/{NUMBER}/compensations/$",
        api.TicketCompensationsApi.as_view(),
        name="api-ticket-compensations",
    ),
    re_path(rf"^tickets/{NUMBER}/tasks/$", api.TicketTasksApi.as_view(), name="api-ticket-tasks"),
    path("compensations/", api.CompensationListApi.as_view(), name="api-compensation-list"),
    re_path(
        rf"^compensations/{ID}/approve/$",
        api.CompensationApproveApi.as_view(),
        name="api-compensation-approve",
    ),
    re_path(
        rf"^compensations/{ID}/reject/$",
        api.CompensationRejectApi.as_view(),
        name="api-compensation-reject",
    ),
    re_path(
        rf"^compensations/{ID}/cancel/$",
        api.CompensationCancelApi.as_view(),
        name="api-compensation-cancel",
    ),
    path("tasks/", api.TaskBoardApi.as_view(), name="api-task-board"),
    re_path(rf"^tasks/{ID}/$", api.TaskDetailApi.as_view(), name="api-task-detail"),
    re_path(rf"^tasks/{ID}/claim/$", api.TaskClaimApi.as_view(), name="api-task-claim"),
    re_path(rf"^tasks/{ID}/complete/$", api.TaskCompleteApi.as_view(), name="api-task-complete"),
    re_path(rf"^tasks/{ID}/return/$", api.TaskReturnApi.as_view(), name="api-task-return"),
    re_path(rf"^tasks/{ID}/notes/$", api.TaskNoteApi.as_view(), name="api-task-notes"),
    re_path(rf"^tasks/{ID}/reassign/$", api.TaskReassignApi.as_view(), name="api-task-reassign"),
    re_path(rf"^tasks/{ID}/cancel/$", api.TaskCancelApi.as_view(), name="api-task-cancel"),
    re_path(rf"^tasks/{ID}/resend/$", api.TaskResendApi.as_view(), name="api-task-resend"),
    path("kb/search/", KbSearchApi.as_view(), name="api-kb-search"),
    path("risks/", RiskAlertListApi.as_view(), name="api-risk-list"),
    re_path(
        rf"^risks/{ID}/acknowledge/$",
        RiskAlertAcknowledgeApi.as_view(),
        name="api-risk-acknowledge",
    ),
    re_path(rf"^status/{NUMBER}/$", api.PublicStatusApi.as_view(), name="api-public-status"),
]

from django.urls import path, re_path

from channels.api import IntakeApi

from . import api

# Ticket numbers are letters, digits and dashes (TS20261122-000123); anything else
# (a NUL byte, a slash) is a 404 before it reaches a query.
NUMBER = r"(?P<number>[-\w]{1,40})"

urlpatterns = [
    path("auth/token/", api.TokenObtainApi.as_view(), name="api-token"),
    path("intake/", IntakeApi.as_view(), name="api-intake"),
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
]

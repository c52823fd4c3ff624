from django.urls import path

from . import views

app_name = "triage"

urlpatterns = [
    path("", views.index, name="index"),
    path("availability/", views.availability, name="availability"),
    path("tickets/<str:number>/panel/", views.ticket_panel, name="ticket-panel"),
    path("tickets/<str:number>/apply/", views.ticket_apply, name="ticket-apply"),
    path("tickets/<str:number>/accept/", views.suggestion_accept, name="suggestion-accept"),
]

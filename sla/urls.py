from django.urls import path

from . import views

app_name = "sla"

urlpatterns = [
    path("reports/sla/", views.report, name="report"),
    path("sla/tickets/<str:number>/pause/", views.ticket_pause, name="ticket-pause"),
    path("sla/tickets/<str:number>/resume/", views.ticket_resume, name="ticket-resume"),
]

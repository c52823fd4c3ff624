from django.urls import path

from . import views

app_name = "sla"

urlpatterns = [
    path("reports/sla/", views.report, name="report"),
    path("reports/risks/", views.risk_board, name="risks"),
    path("reports/risks/<int:pk>/acknowledge/", views.risk_acknowledge, name="risk-acknowledge"),
    path("sla/tickets/<str:number>/pause/", views.ticket_pause, name="ticket-pause"),
    path("sla/tickets/<str:number>/resume/", views.ticket_resume, name="ticket-resume"),
]

from django.urls import path

from . import views

app_name = "kb"

urlpatterns = [
    path("", views.article_list, name="index"),
    path("<int:pk>/", views.article_detail, name="article"),
    path("<int:pk>/feedback/", views.article_feedback, name="feedback"),
    path("tickets/<str:number>/panel/", views.ticket_panel, name="ticket-panel"),
    path("tickets/<str:number>/scripts/", views.ticket_scripts, name="ticket-scripts"),
    path("tickets/<str:number>/sop/<int:step_id>/", views.ticket_sop_step, name="ticket-sop-step"),
]

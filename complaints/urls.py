from django.urls import path

from . import views

app_name = "workspace"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("lookup/", views.lookup, name="lookup"),
    path("tickets/<str:number>/", views.ticket_detail, name="ticket"),
    path("tickets/<str:number>/actions/<str:name>/", views.ticket_action, name="ticket-action"),
    path("tickets/<str:number>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<str:number>/attachments/", views.ticket_attachment, name="ticket-attachment"),
    path("customers/<int:pk>/", views.customer_detail, name="customer"),
]

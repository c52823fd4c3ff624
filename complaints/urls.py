from django.urls import path

from channels import staff_views as channel_views

from . import views

app_name = "workspace"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("lookup/", views.lookup, name="lookup"),
    path("tickets/<str:number>/", views.ticket_detail, name="ticket"),
    path("tickets/<str:number>/actions/<str:name>/", views.ticket_action, name="ticket-action"),
    path("tickets/<str:number>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<str:number>/timeline/", views.ticket_timeline, name="ticket-timeline"),
    path("tickets/<str:number>/attachments/", views.ticket_attachment, name="ticket-attachment"),
    path(
        "tickets/<str:number>/attachments/<int:pk>/",
        views.attachment_download,
        name="attachment",
    ),
    path("customers/<int:pk>/", views.customer_detail, name="customer"),
    path(
        "tickets/<str:number>/messages/<int:pk>/",
        channel_views.message_state,
        name="ticket-message",
    ),
    path(
        "tickets/<str:number>/messages/<int:pk>/retry/",
        channel_views.message_retry,
        name="ticket-message-retry",
    ),
]

urlpatterns += [
    path("approvals/", views.approvals, name="approvals"),
    path(
        "compensations/<int:pk>/<str:decision>/",
        views.compensation_decide,
        name="compensation-decide",
    ),
    path(
        "tickets/<str:number>/compensations/", views.ticket_compensation, name="ticket-compensation"
    ),
    path("tickets/<str:number>/tasks/", views.ticket_tasks, name="ticket-tasks"),
    path("tasks/", views.task_board, name="tasks"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/<str:action>/", views.task_action, name="task-action"),
    path("notifications/", views.notifications, name="notifications"),
    path("nav/badges/", views.nav_badges, name="nav-badges"),
    path("callbacks/", views.callbacks, name="callbacks"),
    path("callbacks/<int:pk>/record/", views.callback_record, name="callback-record"),
]

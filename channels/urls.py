from django.urls import path

from . import staff_views

app_name = "intake"

urlpatterns = [
    path("hotline/", staff_views.hotline, name="hotline"),
    path("registers/", staff_views.register_list, name="registers"),
    path("registers/template.xlsx", staff_views.register_template, name="register-template"),
    path("registers/<int:pk>/", staff_views.register_detail, name="register-detail"),
    path("registers/<int:pk>/confirm/", staff_views.register_confirm, name="register-confirm"),
    path("registers/<int:pk>/progress/", staff_views.register_progress, name="register-progress"),
    path("tickets/export/", staff_views.tickets_export, name="tickets-export"),
]

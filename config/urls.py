from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from channels import views as channel_views
from complaints import public_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("status/", public_views.status_page, name="public-status"),
    path("survey/<str:link>/", public_views.survey_page, name="public-survey"),
    path("complain/", channel_views.complain, name="public-complain"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("complaints.api_urls")),
    path("intake/", include("channels.urls")),
    path("", include("sla.urls")),
    path("kb/", include("kb.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("triage/", include("triage.urls")),  # triage hook
    path("", include("complaints.urls")),
]

# API clients get JSON for an unknown URL too (a malformed ticket number or id).
handler404 = "complaints.api.not_found"

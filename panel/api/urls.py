from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False  # /servers/1.json would read as server 1 in format "json"
router.register("accounts", views.AccountViewSet, basename="account")
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("servers", views.ServerViewSet, basename="server")
router.register("operations", views.OperationViewSet, basename="operation")
router.register("usage", views.UsageViewSet, basename="usage")
router.register("plans", views.PlanViewSet, basename="plan")
router.register("templates", views.TemplateViewSet, basename="template")
router.register("hosts", views.HostViewSet, basename="host")

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(router.urls)),
]

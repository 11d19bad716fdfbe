from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("staff/", views.dashboard, name="dashboard"),
    path("staff/", include("customers.urls")),
    path("", include("contexts.urls")),
    path("admin/", admin.site.urls),
]

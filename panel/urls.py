from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import twofactor, views
from .api import staff as api_staff

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("login/verify/", twofactor.verify, name="login-verify"),
    path("account/", twofactor.account, name="account"),
    path("account/2fa/setup/", twofactor.setup, name="twofactor-setup"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("staff/", views.dashboard, name="dashboard"),
    path("staff/api-tokens/", api_staff.token_list, name="api-tokens"),
    path("staff/api-tokens/<int:pk>/revoke/", api_staff.token_revoke, name="api-token-revoke"),
    path("staff/", include("customers.urls")),
    path("", include("contexts.urls")),
    path("api/v1/", include("panel.api.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "panel.api.errors.not_found"
handler500 = "panel.api.errors.server_error"

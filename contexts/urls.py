from django.urls import path

from . import views

urlpatterns = [
    path("servers/", views.server_list, name="server-list"),
    path("servers/<int:pk>/", views.server_detail, name="server-detail"),
    path("servers/<int:pk>/action/", views.server_action, name="server-action"),
]

from django.urls import path

from . import views

urlpatterns = [
    path("servers/", views.server_list, name="server-list"),
    path("servers/<int:pk>/", views.server_detail, name="server-detail"),
    path("servers/<int:pk>/action/", views.server_action, name="server-action"),
    path("servers/<int:pk>/live/", views.server_live, name="server-live"),
    path("servers/<int:pk>/graphs/", views.server_graphs, name="server-graphs"),
    path("servers/<int:pk>/hostname/", views.server_hostname, name="server-hostname"),
    path("servers/<int:pk>/ssh-keys/", views.server_ssh_keys, name="server-ssh-keys"),
    path("servers/<int:pk>/password/", views.server_password, name="server-password"),
    path("servers/<int:pk>/reinstall/", views.server_reinstall, name="server-reinstall"),
]

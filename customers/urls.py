from django.urls import path

from . import views

urlpatterns = [
    path("provision/", views.provision, name="provision"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<int:pk>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:pk>/billing/", views.customer_billing, name="customer-billing"),
]

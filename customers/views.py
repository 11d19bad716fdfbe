from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from contexts.exceptions import ServiceError
from contexts.views import table_rows
from panel import audit, links
from panel.permissions import staff_required

from . import services
from .forms import ProvisionForm, SearchForm
from .models import Customer

CUSTOMERS_PAGE_SIZE = 50


@staff_required
@never_cache  # the result page carries a one-time password
def provision(request):
    form = ProvisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.provision_account(actor=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            return render(request, "customers/provisioned.html", {"result": result})
    return render(request, "customers/provision.html", {"form": form})


@staff_required
def customer_list(request):
    search = SearchForm(request.GET)
    customers = Customer.objects.annotate(
        server_count=Count("servers", filter=~Q(servers__state="destroyed"), distinct=True)
    )
    if search.is_valid() and (q := search.cleaned_data["q"].strip()):
        customers = customers.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(servers__hostname__icontains=q)
        ).distinct()
    page = Paginator(customers.order_by("name", "pk"), CUSTOMERS_PAGE_SIZE).get_page(request.GET.get("page"))
    customer_url = links.per_object("customer-detail")
    for customer in page.object_list:
        customer.url = customer_url(customer.pk)
    context = {"customers": page.object_list, "page": page, "search": search}
    return render(request, "customers/customer_list.html", context)


@staff_required
def customer_detail(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    servers = table_rows(request, customer.servers.select_related("plan", "host").with_addresses().with_busy())
    events = audit.events_for(customer)
    return render(
        request, "customers/customer_detail.html", {"customer": customer, "servers": servers, "events": events}
    )


BILLING_ACTIONS = {
    "suspend": services.suspend_customer,
    "unsuspend": services.unsuspend_customer,
    "terminate": services.terminate_customer,
}


@staff_required
@require_POST
def customer_billing(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    action = BILLING_ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        messages.error(request, "Unknown billing action.")
    else:
        try:
            operations = action(customer, request.user)
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{customer}: done; {len(operations)} server operation(s) queued.")
    return redirect("customer-detail", pk=customer.pk)

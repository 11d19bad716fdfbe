from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from contexts.models import Host, Operation

from .permissions import staff_required


@login_required
def home(request):
    return redirect("dashboard" if request.user.is_staff else "server-list")


@staff_required
def dashboard(request):
    hosts = Host.objects.with_usage().order_by("name")
    operations = Operation.objects.select_related("server", "server__customer", "requested_by").defer(
        *Operation.LONG_FIELDS
    )[:20]
    return render(request, "panel/dashboard.html", {"hosts": hosts, "operations": operations})

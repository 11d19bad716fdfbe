from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from customers.forms import SearchForm

from . import lifecycle, services
from .choices import OperationKind, ServerState
from .exceptions import ServiceError
from .models import VirtualServer

SIMPLE_ACTIONS = (OperationKind.START, OperationKind.STOP, OperationKind.RESTART)
STAFF_ACTIONS = (OperationKind.SUSPEND, OperationKind.UNSUSPEND, OperationKind.DESTROY)


def servers_for(request):
    return VirtualServer.objects.visible_to(request.user).select_related("customer", "plan", "host", "template")


@login_required
def server_list(request):
    search = SearchForm(request.GET)
    servers = servers_for(request).prefetch_related("addresses")
    state = request.GET.get("state", "")
    if state in ServerState.values:
        servers = servers.filter(state=state)
    elif not request.GET.get("all"):
        servers = servers.live()
    if search.is_valid() and (q := search.cleaned_data["q"].strip()):
        servers = servers.filter(
            Q(hostname__icontains=q) | Q(customer__name__icontains=q) | Q(addresses__address__startswith=q)
        ).distinct()
    return render(
        request,
        "contexts/server_list.html",
        {
            "servers": servers,
            "search": search,
            "states": ServerState.choices,
            "state": state,
        },
    )


def action_buttons(server, user):
    """Each action the page offers, with the reason it is unavailable when it is."""
    busy = server.active_operation()
    kinds = SIMPLE_ACTIONS + (STAFF_ACTIONS if user.is_staff else ())
    buttons = []
    for kind in kinds:
        action = lifecycle.ACTIONS[kind]
        reason = ""
        if busy is not None:
            reason = f"Busy: {busy.get_kind_display().lower()} is {busy.get_status_display().lower()}."
        elif server.state not in action.allowed_from:
            reason = action.requirement.capitalize() + "."
        buttons.append({"kind": kind, "label": OperationKind(kind).label, "disabled_reason": reason})
    return buttons


@login_required
def server_detail(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    return render(
        request,
        "contexts/server_detail.html",
        {
            "server": server,
            "addresses": server.addresses.select_related("pool"),
            "operations": server.operations.select_related("requested_by")[:20],
            "buttons": action_buttons(server, request.user),
        },
    )


@login_required
@require_POST
def server_action(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    kind = request.POST.get("action", "")
    if kind not in SIMPLE_ACTIONS + STAFF_ACTIONS:
        messages.error(request, "Unknown action.")
    else:
        try:
            services.request_action(server, kind, request.user)
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{OperationKind(kind).label} of {server.hostname} queued.")
    return redirect(server)

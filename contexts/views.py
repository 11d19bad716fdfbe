from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from customers.forms import SearchForm
from panel import audit, links

from . import graphs, lifecycle, passwords, services, traffic
from .choices import ACTIVE_OPERATION_STATUSES, OperationKind, ServerState
from .exceptions import ServiceError
from .forms import HostnameForm, ReinstallForm, SSHKeysForm
from .models import Operation, VirtualServer

PAGE_SIZE = 50
LIST_FIELDS = ("hostname", "state", "created_at", "customer__name", "plan__name", "host__name", "host__state")
SIMPLE_ACTIONS = (OperationKind.START, OperationKind.STOP, OperationKind.RESTART)
STAFF_ACTIONS = (OperationKind.SUSPEND, OperationKind.UNSUSPEND, OperationKind.DESTROY)
QUICK_LABELS = {kind: (kind, OperationKind(kind).label) for kind in SIMPLE_ACTIONS}


def servers_for(request):
    return VirtualServer.objects.visible_to(request.user).select_related("customer", "plan", "host", "template")


def first_page_without_count(queryset, number) -> Page:
    """A page of PAGE_SIZE; the first one without a COUNT query when everything fits on it (a
    customer's handful of servers): one row more than a page tells whether it does."""
    paginator = Paginator(queryset, PAGE_SIZE)
    if number not in (None, "", "1"):
        return paginator.get_page(number)
    rows = list(queryset[: PAGE_SIZE + 1])
    if len(rows) <= PAGE_SIZE:
        paginator.count = len(rows)  # a cached property: set, it is never queried
    return Page(rows[:PAGE_SIZE], 1, paginator)


def table_rows(request, servers) -> list:
    """The rows of a servers table (_server_table.html), from servers fetched `with_busy()`: each
    with its links and the quick actions its state allows."""
    servers = list(servers)
    detail_url, action_url = links.per_object("server-detail"), links.per_object("server-action")
    customer_url = links.per_object("customer-detail") if request.user.is_staff else None
    for server in servers:
        server.url, server.action_url = detail_url(server.pk), action_url(server.pk)
        server.customer_url = customer_url(server.customer_id) if customer_url else ""
        server.quick_actions = (
            []
            if server.busy
            else [QUICK_LABELS[k] for k in SIMPLE_ACTIONS if server.state in lifecycle.ACTIONS[k].allowed_from]
        )
    return servers


@login_required
def server_list(request):
    search = SearchForm(request.GET)
    # Only what the table shows: every column fetched is parsed and stored for each row of a busy page.
    servers = (
        VirtualServer.objects.visible_to(request.user)
        .select_related("customer", "plan", "host")
        .only(*LIST_FIELDS)
        .with_addresses()
    )
    state = request.GET.get("state", "")
    if state in ServerState.values:
        servers = servers.filter(state=state)
    elif not request.GET.get("all"):
        servers = servers.live()
    if search.is_valid() and (q := search.cleaned_data["q"].strip()):
        servers = servers.filter(
            Q(hostname__icontains=q) | Q(customer__name__icontains=q) | Q(addresses__address__startswith=q)
        ).distinct()
    page = first_page_without_count(servers.with_busy().order_by("-created_at", "-pk"), request.GET.get("page"))
    servers = table_rows(request, page.object_list)
    busy = any(server.busy for server in servers)
    context = {
        "servers": servers,
        "page": page,
        "search": search,
        "states": ServerState.choices,
        "state": state,
        "busy": busy,
    }
    if request.htmx:
        # The table alone, polled while a listed server is busy; 286 stops the polling.
        response = render(request, "contexts/_server_table.html", context)
        if not busy:
            response.status_code = 286
        return response
    return render(request, "contexts/server_list.html", context)


def action_buttons(server, user, busy):
    """Each action the page offers, with the reason it is unavailable when it is."""
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


def detail_context(request, server) -> dict:
    # One read of the operations: the notice, the buttons and the table then agree with each other.
    operations = list(server.operations.select_related("requested_by").defer(*Operation.LONG_FIELDS)[:20])
    busy = next((op for op in operations if op.status in ACTIVE_OPERATION_STATUSES), None)
    return {
        "server": server,
        "addresses": server.addresses.all(),
        "operations": operations,
        "buttons": action_buttons(server, request.user, busy),
        "busy": busy,
    }


def graph_context(request, server) -> dict:
    range_name = request.GET.get("range", "hour")
    if range_name not in graphs.RANGES:
        range_name = "hour"
    return {"graphs": graphs.load(server, range_name), "polling": server.state == ServerState.RUNNING}


@login_required
def server_detail(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    context = (
        detail_context(request, server)
        | graph_context(request, server)
        | {
            "traffic": traffic.this_month(server),
            "hostname_form": HostnameForm(initial={"hostname": server.hostname}),
            "keys_form": SSHKeysForm(initial={"ssh_keys": server.ssh_keys}),
            "reinstall_form": ReinstallForm(server=server),
        }
    )
    if request.user.is_staff:
        context["audit_events"] = audit.events_for(server)
    return render(request, "contexts/server_detail.html", context)


@login_required
def server_graphs(request, pk):
    """The graphs alone: htmx fetches them every minute while the server runs, and on a range switch."""
    server = get_object_or_404(servers_for(request), pk=pk)
    return render(request, "contexts/_server_graphs.html", {"server": server} | graph_context(request, server))


@login_required
def server_live(request, pk):
    """The part of the server page that changes while the host works: state, actions, operations.
    htmx polls it while an operation runs; status 286 tells htmx to stop once nothing is running."""
    server = get_object_or_404(servers_for(request), pk=pk)
    context = detail_context(request, server)
    response = render(request, "contexts/_server_live.html", context)
    if context["busy"] is None:
        response.status_code = 286
    return response


def _done(request, server, ok_message: str, call) -> HttpResponse:
    try:
        call()
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, ok_message)
    return redirect(server)


def _show_password_once(request, server, password: str, what: str) -> HttpResponse:
    """The new root password, on a page that is never cached (views using it are never_cache)."""
    return render(request, "contexts/new_password.html", {"server": server, "password": password, "what": what})


@login_required
@require_POST
def server_hostname(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    form = HostnameForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["hostname"]))
        return redirect(server)
    hostname = form.cleaned_data["hostname"]
    return _done(
        request,
        server,
        f"Renaming to {hostname} queued.",
        lambda: services.change_hostname(server, hostname, request.user),
    )


@login_required
@require_POST
def server_ssh_keys(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    form = SSHKeysForm(request.POST)
    form.is_valid()
    keys = form.cleaned_data.get("ssh_keys", "")
    return _done(request, server, "New SSH keys queued.", lambda: services.set_ssh_keys(server, keys, request.user))


@never_cache  # the page carries the new root password, once
@login_required
@require_POST
def server_password(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    try:
        _, password = services.reset_root_password(server, request.user)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(server)
    return _show_password_once(request, server, password, "The root password is being reset.")


@never_cache
@login_required
@require_POST
def server_reinstall(request, pk):
    server = get_object_or_404(servers_for(request), pk=pk)
    form = ReinstallForm(request.POST, server=server)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(server)
    password = passwords.generate()
    try:
        services.reinstall_server(server, form.cleaned_data["template"], request.user, password)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(server)
    return _show_password_once(
        request, server, password, f"{server.hostname} is being reinstalled from {form.cleaned_data['template']}."
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

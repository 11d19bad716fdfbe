"""The only code that changes hosts, servers, addresses and operations.

Every function runs in one transaction, checks permission and state first, records what it did in
the audit log, and sends work to a host only after the transaction commits.
"""

import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.choices import BillingState
from panel import audit, webhooks

from . import lifecycle, passwords, tasks
from .choices import AddressFamily, HostState, OperationKind, OperationStatus, ServerState, TrafficState
from .engine.errors import InvalidSpec
from .engine.guestfiles import check_ssh_keys
from .engine.spec import CONTEXT_ID_RANGE
from .exceptions import InvalidRequest, NoCapacity, NotPermitted, OperationInProgress, PoolExhausted
from .models import Host, IPAddress, IPPool, Operation, VirtualServer
from .placement import Need, Room, choose_host, explain_no_room, first_free_id
from .specs import operation_spec
from .validators import normalise_hostname

CONTEXT_ID_MIN, CONTEXT_ID_MAX = CONTEXT_ID_RANGE


# Placement and allocation. Callers hold the transaction; locks are taken host first, then
# pools, then servers, always in that order, so concurrent requests queue instead of deadlocking.


def need_of(plan) -> Need:
    return Need(cpus=plan.cpu_cores, memory_mib=plan.memory_mib, disk_gib=plan.disk_gib)


def rooms(hosts, credit=None) -> list[Room]:
    """Free capacity of `hosts` (already locked). `credit` gives back one server's plan, for a change of plan."""
    usage = {h.pk: h for h in Host.objects.filter(pk__in=[h.pk for h in hosts]).with_usage()}
    out = []
    for host in hosts:
        used = usage[host.pk]
        room = Room(
            name=host.name,
            cpus=(host.sellable_cpus - used.used_cpus).quantize(Decimal("0.01")),
            memory_mib=host.memory_mib - used.used_memory_mib,
            disk_gib=host.disk_gib - used.used_disk_gib,
        )
        if credit is not None:
            room = Room(
                room.name, room.cpus + credit.cpus, room.memory_mib + credit.memory_mib, room.disk_gib + credit.disk_gib
            )
        out.append(room)
    return out


def place(plan, template) -> Host:
    """Lock the active hosts that have `template` and return the one with most room for `plan`."""
    hosts = list(
        Host.objects.select_for_update(of=("self",)).filter(state=HostState.ACTIVE, templates=template).order_by("pk")
    )
    need = need_of(plan)
    available = rooms(hosts)
    chosen = choose_host(available, need)
    if chosen is None:
        raise NoCapacity(explain_no_room(available, need))
    return next(h for h in hosts if h.name == chosen.name)


def allocate_context_id(host) -> int:
    """The lowest context id free on `host`, whose row the caller has locked."""
    used = set(VirtualServer.objects.live().filter(host=host).values_list("context_id", flat=True))
    found = first_free_id(used, CONTEXT_ID_MIN, CONTEXT_ID_MAX)
    if found is None:
        raise NoCapacity(f"Host {host} has no free context id left.")
    return found


def assign_addresses(server, family: int, count: int) -> list[IPAddress]:
    """Give `server` `count` more addresses of `family` from the pools of its host."""
    if count <= 0:
        return []
    pools = list(IPPool.objects.select_for_update(of=("self",)).filter(hosts=server.host, family=family).order_by("pk"))
    taken = []
    for pool in pools:
        for address in pool.first_available(count - len(taken)):
            taken.append(IPAddress.objects.create(pool=pool, address=address, server=server))
        if len(taken) == count:
            return taken
    label = AddressFamily(family).label
    if not pools:
        raise PoolExhausted(
            f"Host {server.host} has no {label} pool. Add one under IP pools and assign it to the host."
        )
    raise PoolExhausted(
        f"The {label} pools of host {server.host} ({', '.join(p.cidr for p in pools)}) have no free address left. "
        "Add a pool or release addresses."
    )


# State changes.


def set_state(server, target: str, actor, reason: str, actor_name: str | None = None) -> None:
    lifecycle.check_transition(server.state, target)
    if server.state == target:
        return
    before = server.state
    server.state = target
    server.save(update_fields=["state", "updated_at"])
    audit.record(
        actor, "server.state", server, before, target, reason=reason, **({"by": actor_name} if actor_name else {})
    )
    if target == ServerState.SUSPENDED:
        webhooks.emit(
            "server.suspended",
            {
                "server": server.pk,
                "customer": server.customer_id,
                "hostname": server.hostname,
                "reason": "traffic" if server.traffic_state == TrafficState.SUSPENDED else "billing",
            },
        )


def check_permission(server, action, actor) -> None:
    """Staff and the system may do anything; a customer only their own servers' customer actions."""
    if actor is None or actor.is_staff:
        return
    if actor.customer_id != server.customer_id or not action.customer_may:
        raise NotPermitted(f"You may not {action.verb} {server}.")
    if server.customer.billing_state != BillingState.ACTIVE:
        raise NotPermitted("Your account is suspended: please contact us to restore it.")


def queue_operation(server, kind: str, actor, addresses=None, params=None, undo=None) -> Operation:
    """Record an operation on `server` (locked by the caller) and send it to its host after commit.

    `params` travel to the host with the spec (a password only as its crypt hash); `undo` stays here
    and says what to restore if the host reports failure."""
    check_permission(server, lifecycle.ACTIONS[kind], actor)
    busy = server.active_operation()
    if busy is not None:
        raise OperationInProgress(
            f"{server} is busy: {busy.get_kind_display().lower()} is {busy.get_status_display().lower()}. "
            "Wait for it to finish, then try again."
        )
    action = lifecycle.check_action(kind, server.state, str(server))
    params, undo = dict(params or {}), dict(undo or {})
    if kind == OperationKind.SUSPEND:
        undo["state"] = server.state
    if kind == OperationKind.UNSUSPEND:
        # Back to what it was: a server stopped before its suspension stays stopped.
        suspension = last_suspension(server)
        params["resume"] = not (suspension and suspension.undo.get("state") == ServerState.STOPPED)
    operation = Operation.objects.create(server=server, kind=kind, requested_by=actor, undo=undo)
    operation.spec = operation_spec(operation, addresses, params)
    operation.save(update_fields=["spec"])
    if action.while_queued:
        set_state(server, action.while_queued, actor, reason=kind)
    audit.record(actor, f"operation.{kind}", server, operation=str(operation.pk))
    queue, spec = server.host.queue, operation.spec
    transaction.on_commit(lambda: tasks.enqueue_operation(operation.pk, queue, spec))
    return operation


def locked(server) -> VirtualServer:
    return (
        VirtualServer.objects.select_for_update(of=("self",))
        .select_related("customer", "host", "plan", "template")
        .get(pk=server.pk)
    )


# What views, admin actions, commands and billing call.


def create_server(
    *, customer, plan, template, hostname: str, actor, root_password: str | None = None, ssh_keys: str = ""
) -> tuple[VirtualServer, Operation]:
    """A new server, placed and given addresses, and its creation queued. `root_password` (shown to
    the customer, never stored) goes to the host as a crypt hash; without one root has no password."""
    try:
        hostname = normalise_hostname(hostname)
    except ValidationError as exc:
        raise InvalidRequest(" ".join(exc.messages)) from exc
    if not plan.is_active:
        raise InvalidRequest(f"The plan {plan} is no longer sold; choose an active plan.")
    if not template.is_active:
        raise InvalidRequest(f"The template {template} is not offered any more; choose another.")
    if customer.billing_state != BillingState.ACTIVE:
        raise NotPermitted(f"Customer {customer} is {customer.get_billing_state_display().lower()}: no new servers.")
    with transaction.atomic():
        if VirtualServer.objects.live().filter(customer=customer, hostname=hostname).exists():
            raise InvalidRequest(f"{customer} already has a server called {hostname}; choose another hostname.")
        host = place(plan, template)
        try:
            with transaction.atomic():
                server = VirtualServer.objects.create(
                    customer=customer,
                    plan=plan,
                    host=host,
                    template=template,
                    hostname=hostname,
                    context_id=allocate_context_id(host),
                    ssh_keys=clean_ssh_keys(ssh_keys),
                )
        except IntegrityError as exc:
            raise InvalidRequest(
                f"{customer} already has a server called {hostname}; choose another hostname."
            ) from exc
        assign_addresses(server, 4, plan.ipv4_count)
        assign_addresses(server, 6, plan.ipv6_count)
        audit.record(actor, "server.created", server, "", server.state, host=host.name, plan=plan.slug)
        operation = queue_operation(server, OperationKind.CREATE, actor, params=account_params(server, root_password))
    return server, operation


def clean_ssh_keys(text: str) -> str:
    """One OpenSSH public key per line; blank lines and comments dropped; anything else refused."""
    keys = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.startswith("#")]
    try:
        check_ssh_keys(keys)
    except InvalidSpec as exc:
        raise InvalidRequest(f"{exc} Paste public keys (id_ed25519.pub), one per line.") from exc
    return "\n".join(keys)


def account_params(server, root_password: str | None) -> dict:
    params = {"ssh_keys": server.ssh_keys.splitlines()} if server.ssh_keys else {}
    if root_password:
        params["password_hash"] = passwords.crypt_hash(root_password)
    return params


def last_suspension(server) -> Operation | None:
    return (
        server.operations.filter(kind=OperationKind.SUSPEND, status=OperationStatus.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )


def request_action(server, kind: str, actor) -> Operation:
    """start, stop, restart, suspend, unsuspend or destroy one server."""
    from . import traffic  # traffic builds on this module

    if kind in (OperationKind.CREATE, OperationKind.REINSTALL, OperationKind.CHANGE_PLAN):
        raise InvalidRequest(f"Use the {kind} service for {kind}.")
    with transaction.atomic():
        server = locked(server)
        answered, undo = traffic.person_acts(server, kind, actor)
        if answered is not None:
            return answered
        return queue_operation(server, kind, actor, undo=undo)


def reinstall_server(server, template, actor, root_password: str | None = None) -> Operation:
    """Wipe the server and clone it again from `template`, keeping its addresses, hostname and SSH
    keys; root gets `root_password` (pass a fresh one and show it once)."""
    with transaction.atomic():
        server = locked(server)
        if not template.is_active or not template.hosts.filter(pk=server.host_id).exists():
            raise InvalidRequest(f"The template {template} is not available on {server.host}; choose another.")
        lifecycle.check_action(OperationKind.REINSTALL, server.state, str(server))
        before = server.template
        server.template = template
        server.save(update_fields=["template", "updated_at"])
        operation = queue_operation(
            server, OperationKind.REINSTALL, actor, params=account_params(server, root_password)
        )
        if before != template:
            audit.record(actor, "server.template", server, **{"from": before.name, "to": template.name})
        return operation


def change_plan(server, plan, actor) -> Operation:
    """Move a server to another plan. Limits apply live on the host; dropped addresses return to the
    pool only once the host confirms it no longer uses them."""
    if not plan.is_active:
        raise InvalidRequest(f"The plan {plan} is no longer sold; choose an active plan.")
    with transaction.atomic():
        host = Host.objects.select_for_update(of=("self",)).get(pk=server.host_id)
        server = locked(server)
        lifecycle.check_action(OperationKind.CHANGE_PLAN, server.state, str(server))
        if plan == server.plan:
            raise InvalidRequest(f"{server} is already on the plan {plan}.")
        credit = need_of(server.plan)
        (room,) = rooms([host], credit=credit)
        if not room.fits(need_of(plan)):
            raise NoCapacity(
                f"Host {host} has no room for the plan {plan}: {', '.join(room.shortfalls(need_of(plan)))}."
            )
        before = server.plan
        server.plan = plan
        server.save(update_fields=["plan", "updated_at"])
        kept, added = [], []
        for family, wanted in ((4, plan.ipv4_count), (6, plan.ipv6_count)):
            current = list(
                server.addresses.filter(pool__family=family).select_related("pool").order_by("assigned_at", "id")
            )
            added += assign_addresses(server, family, wanted - len(current))
            kept += current[:wanted]
        kept += added
        operation = queue_operation(
            server,
            OperationKind.CHANGE_PLAN,
            actor,
            addresses=kept,
            undo={"plan": before.pk, "added": [a.address for a in added]},
        )
        audit.record(actor, "server.plan", server, **{"from": before.slug, "to": plan.slug})
        return operation


def change_hostname(server, hostname: str, actor) -> Operation:
    try:
        hostname = normalise_hostname(hostname)
    except ValidationError as exc:
        raise InvalidRequest(" ".join(exc.messages)) from exc
    with transaction.atomic():
        server = locked(server)
        lifecycle.check_action(OperationKind.HOSTNAME, server.state, str(server))
        check_permission(server, lifecycle.ACTIONS[OperationKind.HOSTNAME], actor)
        if hostname == server.hostname:
            raise InvalidRequest(f"{server} is already called {hostname}.")
        if VirtualServer.objects.live().filter(customer=server.customer, hostname=hostname).exists():
            raise InvalidRequest(f"{server.customer} already has a server called {hostname}; choose another.")
        before = server.hostname
        server.hostname = hostname
        server.save(update_fields=["hostname", "updated_at"])
        operation = queue_operation(server, OperationKind.HOSTNAME, actor, undo={"hostname": before})
        audit.record(actor, "server.hostname", server, before, hostname)
        return operation


def reset_root_password(server, actor, password: str | None = None) -> tuple[Operation, str]:
    """A new root password (random unless given): returned once to be shown, sent as a hash, kept nowhere."""
    password = password or passwords.generate()
    with transaction.atomic():
        operation = queue_operation(
            locked(server), OperationKind.PASSWORD, actor, params={"password_hash": passwords.crypt_hash(password)}
        )
    return operation, password


def set_ssh_keys(server, text: str, actor) -> Operation:
    keys = clean_ssh_keys(text)
    with transaction.atomic():
        server = locked(server)
        lifecycle.check_action(OperationKind.SSH_KEYS, server.state, str(server))
        check_permission(server, lifecycle.ACTIONS[OperationKind.SSH_KEYS], actor)
        before = server.ssh_keys
        server.ssh_keys = keys
        server.save(update_fields=["ssh_keys", "updated_at"])
        return queue_operation(
            server,
            OperationKind.SSH_KEYS,
            actor,
            params={"ssh_keys": keys.splitlines() if keys else []},
            undo={"ssh_keys": before},
        )


def report_progress(operation_id, progress: int, step: str) -> None:
    """The host says how far it got. Ignored once the operation has finished (late or repeated reports)."""
    now = timezone.now()
    Operation.objects.filter(pk=operation_id, status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING]).update(
        status=OperationStatus.RUNNING, progress=max(0, min(100, int(progress))), step=step[:200]
    )
    Operation.objects.filter(pk=operation_id, started_at__isnull=True).update(started_at=now)


def finish_operation(operation_id, *, ok: bool, error: str = "", log: str = "", facts=None) -> Operation:
    """Record the host's outcome and move the server on. Safe to call twice: the second call changes nothing."""
    with transaction.atomic():
        operation = Operation.objects.select_for_update(of=("self",)).get(pk=operation_id)
        if operation.is_finished:
            return operation
        server = locked(operation.server)
        action = lifecycle.ACTIONS[operation.kind]
        operation.status = OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED
        operation.finished_at = timezone.now()
        operation.started_at = operation.started_at or operation.finished_at
        operation.error = "" if ok else (error or "The host reported a failure without a reason.")
        operation.log = log
        if ok:
            operation.progress, operation.step = 100, "Done"
        if (operation.spec.get("params") or {}).get("password_hash"):
            operation.spec["params"]["password_hash"] = "(removed once sent)"
        operation.save()
        target = action.on_success if ok else action.on_failure
        if ok and operation.kind == OperationKind.UNSUSPEND and (facts or {}).get("state") == "stopped":
            target = ServerState.STOPPED
        if not ok:
            undo_failed(server, operation)
        if target:
            set_state(
                server, target, None, reason=f"{operation.kind} {operation.status}", actor_name=f"host {server.host}"
            )
        if ok:
            release_unused_addresses(server, operation)
        if ok and operation.kind == OperationKind.CHANGE_PLAN and server.traffic_state:
            from . import traffic  # traffic builds on this module

            traffic.renew_one(server, traffic.month_start())
        audit.record(None, f"operation.{operation.status}", server, operation=str(operation.pk), error=operation.error)
        webhooks.emit(
            "operation.finished",
            {
                "operation": str(operation.pk),
                "kind": operation.kind,
                "status": operation.status,
                "error": operation.error,
                "server": server.pk,
                "customer": server.customer_id,
                "server_state": server.state,
            },
        )
        return operation


def undo_failed(server, operation) -> None:
    """A failed change leaves the panel's record as the host still has it, so a retry starts clean."""
    from customers.models import Plan

    if "plan" in operation.undo:
        before, server.plan = server.plan, Plan.objects.get(pk=operation.undo["plan"])
        audit.record(None, "server.plan", server, **{"from": before.slug, "to": server.plan.slug, "undo": True})
        # Addresses taken for the new plan go back to the pool.
        server.addresses.filter(address__in=operation.undo.get("added", [])).delete()
    if "hostname" in operation.undo:
        server.hostname = operation.undo["hostname"]
    if "ssh_keys" in operation.undo:
        server.ssh_keys = operation.undo["ssh_keys"]
    if "traffic" in operation.undo:
        previous = operation.undo["traffic"]
        server.traffic_state = previous["state"]
        server.traffic_period = datetime.date.fromisoformat(previous["period"]) if previous["period"] else None
    server.save()


def release_unused_addresses(server, operation) -> None:
    """After a confirmed destroy or change of plan, addresses the host no longer uses go back to the pool."""
    if operation.kind == OperationKind.DESTROY:
        released = server.addresses.all()
    elif operation.kind == OperationKind.CHANGE_PLAN:
        in_use = [a["address"] for a in operation.spec["context"]["addresses"]]
        released = server.addresses.exclude(address__in=in_use)
    else:
        return
    addresses = list(released.values_list("address", flat=True))
    if addresses:
        released.delete()
        audit.record(None, "server.addresses_released", server, **{"addresses": addresses})

"""Customer accounts and their billing state: provisioning, suspension, termination."""

import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q

from contexts import lifecycle, passwords
from contexts.choices import ACTIVE_OPERATION_STATUSES, OperationKind, ServerState, TrafficState
from contexts.exceptions import InvalidRequest, OperationInProgress
from contexts.models import Operation, VirtualServer
from contexts.services import create_server, queue_operation
from panel import audit

from .choices import BillingState
from .models import Customer, User

# Which billing state may follow which.
BILLING_TRANSITIONS = {
    BillingState.ACTIVE: {BillingState.SUSPENDED, BillingState.TERMINATED},
    BillingState.SUSPENDED: {BillingState.ACTIVE, BillingState.TERMINATED},
    BillingState.TERMINATED: set(),
}


@dataclass
class ProvisionResult:
    customer: Customer
    login: User
    password: str  # shown once; only its hash is stored
    server: VirtualServer
    operation: Operation
    root_password: str = ""  # the server's root password: shown once, sent to the host as a crypt hash


def provision_account(
    *, name: str, email: str, plan, template, hostname: str, actor, root_password: str | None = None, ssh_keys: str = ""
) -> ProvisionResult:
    """A new customer, their first login and their first server, all or nothing. The server's root
    password is random unless given (a billing system may choose it)."""
    name = (name or "").strip()
    email = (email or "").strip().lower()
    if not name:
        raise InvalidRequest("Enter the customer's name.")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidRequest(f"{email!r} is not a valid email address.") from exc
    with transaction.atomic():
        if User.objects.filter(username__iexact=email).exists():
            raise InvalidRequest(f"A login for {email} already exists; use another email address.")
        customer = Customer.objects.create(name=name, email=email)
        audit.record(actor, "customer.created", customer, "", customer.billing_state)
        password = secrets.token_urlsafe(12)
        login = User.objects.create_user(username=email, email=email, password=password, customer=customer)
        audit.record(actor, "login.created", login, **{"customer": customer.pk})
        root_password = root_password or passwords.generate()
        server, operation = create_server(
            customer=customer,
            plan=plan,
            template=template,
            hostname=hostname,
            actor=actor,
            root_password=root_password,
            ssh_keys=ssh_keys,
        )
    return ProvisionResult(customer, login, password, server, operation, root_password)


def _locked_customer(customer) -> Customer:
    return Customer.objects.select_for_update(of=("self",)).get(pk=customer.pk)


def _set_billing_state(customer, target, actor) -> None:
    if target not in BILLING_TRANSITIONS[customer.billing_state]:
        raise lifecycle.IllegalTransition(
            f"Customer {customer} is {customer.get_billing_state_display().lower()} and cannot become "
            f"{BillingState(target).label.lower()}."
        )
    before = customer.billing_state
    customer.billing_state = target
    customer.save(update_fields=["billing_state", "updated_at"])
    audit.record(actor, "customer.billing_state", customer, before, target)


def _queue_for_servers(customer, kind: str, states, actor, where: Q | None = None) -> list[Operation]:
    """Queue `kind` on each of the customer's servers in `states` (and `where`); refuse the lot if one
    is busy."""
    servers = list(
        VirtualServer.objects.select_for_update(of=("self",))
        .filter(where or Q(), customer=customer, state__in=states)
        .select_related("customer", "host", "plan", "template")
        .order_by("pk")
    )
    # Any busy server blocks the lot: one being provisioned now would come up running after a suspension.
    busy = list(
        VirtualServer.objects.live().filter(customer=customer, operations__status__in=ACTIVE_OPERATION_STATUSES)
    )
    if busy:
        raise OperationInProgress(
            f"{', '.join(map(str, busy))} {'is' if len(busy) == 1 else 'are'} busy with another operation; "
            "try again when it has finished. Nothing was changed."
        )
    return [queue_operation(server, kind, actor) for server in servers]


def suspend_customer(customer, actor) -> list[Operation]:
    """Stop the customer's servers from serving and lock them out of acting on them."""
    with transaction.atomic():
        customer = _locked_customer(customer)
        _set_billing_state(customer, BillingState.SUSPENDED, actor)
        return _queue_for_servers(
            customer, OperationKind.SUSPEND, lifecycle.ACTIONS[OperationKind.SUSPEND].allowed_from, actor
        )


def unsuspend_customer(customer, actor) -> list[Operation]:
    with transaction.atomic():
        customer = _locked_customer(customer)
        _set_billing_state(customer, BillingState.ACTIVE, actor)
        # A server suspended for its traffic stays so until the month ends: paying the invoice does not
        # buy more traffic.
        return _queue_for_servers(
            customer,
            OperationKind.UNSUSPEND,
            [ServerState.SUSPENDED],
            actor,
            where=~Q(traffic_state=TrafficState.SUSPENDED),
        )


def terminate_customer(customer, actor) -> list[Operation]:
    """Destroy every server, disable every login; the records stay for billing and the audit log."""
    with transaction.atomic():
        customer = _locked_customer(customer)
        _set_billing_state(customer, BillingState.TERMINATED, actor)
        operations = _queue_for_servers(
            customer, OperationKind.DESTROY, lifecycle.ACTIONS[OperationKind.DESTROY].allowed_from, actor
        )
        for login in customer.logins.filter(is_active=True):
            login.is_active = False
            login.save(update_fields=["is_active"])
            audit.record(actor, "login.disabled", login, **{"reason": "customer terminated"})
        return operations

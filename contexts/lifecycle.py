"""The virtual server's state machine: which state may follow which, and what each action needs.

Pure data and functions, no database: services consult it before changing anything, so an
illegal request is refused with a message instead of being ignored.
"""

from dataclasses import dataclass

from .choices import OperationKind as K
from .choices import ServerState as S
from .exceptions import ServiceError

# Every state change the panel may make. Anything else is a bug or a refused request.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROVISIONING, S.FAILED, S.DESTROYING}),
    S.PROVISIONING: frozenset({S.RUNNING, S.STOPPED, S.FAILED, S.DESTROYING}),
    S.RUNNING: frozenset({S.STOPPED, S.SUSPENDED, S.PROVISIONING, S.FAILED, S.DESTROYING}),
    S.STOPPED: frozenset({S.RUNNING, S.SUSPENDED, S.PROVISIONING, S.FAILED, S.DESTROYING}),
    S.SUSPENDED: frozenset({S.RUNNING, S.STOPPED, S.FAILED, S.DESTROYING}),
    S.FAILED: frozenset({S.PROVISIONING, S.RUNNING, S.STOPPED, S.DESTROYING}),
    S.DESTROYING: frozenset({S.DESTROYED, S.FAILED}),
    S.DESTROYED: frozenset(),
}


class IllegalTransition(ServiceError):
    """A state change the state machine forbids; the message says why in plain words."""


@dataclass(frozen=True)
class Action:
    kind: str
    verb: str
    allowed_from: frozenset[str]
    requirement: str  # shown when refused: what state the server must be in
    while_queued: str | None = None  # state entered as soon as the work is queued
    on_success: str | None = None  # state once the host confirms; None keeps the state
    on_failure: str | None = None  # state when the host reports failure; None keeps the state
    customer_may: bool = False  # customers may ask for it themselves; the rest is staff only


ACTIONS: dict[str, Action] = {
    a.kind: a
    for a in (
        Action(
            K.CREATE,
            "create",
            frozenset({S.PENDING}),
            "only a new server can be created",
            while_queued=S.PROVISIONING,
            on_success=S.RUNNING,
            on_failure=S.FAILED,
        ),
        Action(
            K.START,
            "start",
            frozenset({S.STOPPED}),
            "only a stopped server can be started",
            on_success=S.RUNNING,
            customer_may=True,
        ),
        Action(
            K.STOP,
            "stop",
            frozenset({S.RUNNING}),
            "only a running server can be stopped",
            on_success=S.STOPPED,
            customer_may=True,
        ),
        Action(
            K.RESTART,
            "restart",
            frozenset({S.RUNNING}),
            "only a running server can be restarted",
            on_success=S.RUNNING,
            customer_may=True,
        ),
        Action(
            K.REINSTALL,
            "reinstall",
            frozenset({S.RUNNING, S.STOPPED, S.FAILED}),
            "a server can be reinstalled when it is running, stopped or failed",
            while_queued=S.PROVISIONING,
            on_success=S.RUNNING,
            on_failure=S.FAILED,
            customer_may=True,
        ),
        Action(
            K.SUSPEND,
            "suspend",
            frozenset({S.RUNNING, S.STOPPED}),
            "only a running or stopped server can be suspended",
            on_success=S.SUSPENDED,
        ),
        Action(
            K.UNSUSPEND,
            "unsuspend",
            frozenset({S.SUSPENDED}),
            "only a suspended server can be unsuspended",
            on_success=S.RUNNING,
        ),
        Action(
            K.CHANGE_PLAN,
            "change the plan of",
            frozenset({S.RUNNING, S.STOPPED, S.SUSPENDED}),
            "the plan can be changed when the server is running, stopped or suspended",
        ),
        Action(
            K.HOSTNAME,
            "rename",
            frozenset({S.RUNNING, S.STOPPED}),
            "the hostname can be changed when the server is running or stopped",
            customer_may=True,
        ),
        Action(
            K.PASSWORD,
            "reset the root password of",
            frozenset({S.RUNNING, S.STOPPED}),
            "the root password can be reset when the server is running or stopped",
            customer_may=True,
        ),
        Action(
            K.SSH_KEYS,
            "set the SSH keys of",
            frozenset({S.RUNNING, S.STOPPED}),
            "SSH keys can be set when the server is running or stopped",
            customer_may=True,
        ),
        Action(
            K.LIMITS,
            "apply the limits of",
            frozenset({S.RUNNING, S.STOPPED, S.SUSPENDED}),
            "limits can be applied when the server is running, stopped or suspended",
        ),
        Action(
            K.DESTROY,
            "destroy",
            frozenset({S.PENDING, S.RUNNING, S.STOPPED, S.SUSPENDED, S.FAILED}),
            "a server cannot be destroyed while it is being provisioned or destroyed",
            while_queued=S.DESTROYING,
            on_success=S.DESTROYED,
            on_failure=S.FAILED,
        ),
    )
}


def check_transition(current: str, target: str) -> None:
    """Raise IllegalTransition unless `current` may become `target` (staying put is always allowed)."""
    if current == target:
        return
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"A {S(current).label.lower()} server cannot become {S(target).label.lower()}.")


def check_action(kind: str, current: str, server_label: str) -> Action:
    """Return the action if it may run on a server in state `current`, else raise IllegalTransition."""
    action = ACTIONS[kind]
    if current not in action.allowed_from:
        raise IllegalTransition(
            f"Cannot {action.verb} {server_label}: it is {S(current).label.lower()}, and {action.requirement}."
        )
    return action


def available_actions(current: str) -> list[str]:
    return [kind for kind, action in ACTIONS.items() if current in action.allowed_from]

"""The server state machine, as pure data."""

import pytest

from contexts import lifecycle
from contexts.choices import OperationKind as K
from contexts.choices import ServerState as S


def test_every_state_has_a_row_and_destroyed_is_final():
    assert set(lifecycle.TRANSITIONS) == set(S.values)
    assert lifecycle.TRANSITIONS[S.DESTROYED] == frozenset()
    for targets in lifecycle.TRANSITIONS.values():
        assert targets <= set(S.values)


def test_starting_a_destroyed_server_is_refused_with_a_reason():
    with pytest.raises(lifecycle.IllegalTransition) as refused:
        lifecycle.check_action(K.START, S.DESTROYED, "vps-7 (www.example.com)")
    assert str(refused.value) == (
        "Cannot start vps-7 (www.example.com): it is destroyed, and only a stopped server can be started."
    )


@pytest.mark.parametrize(
    "kind, state",
    [
        (K.STOP, S.STOPPED),
        (K.START, S.RUNNING),
        (K.RESTART, S.STOPPED),
        (K.UNSUSPEND, S.RUNNING),
        (K.DESTROY, S.DESTROYING),
        (K.DESTROY, S.PROVISIONING),
        (K.REINSTALL, S.SUSPENDED),
        (K.CREATE, S.RUNNING),
    ],
)
def test_actions_refused_in_the_wrong_state(kind, state):
    with pytest.raises(lifecycle.IllegalTransition):
        lifecycle.check_action(kind, state, "x")


def test_every_action_leads_only_through_allowed_transitions():
    for action in lifecycle.ACTIONS.values():
        for start in action.allowed_from:
            after_queue = action.while_queued or start
            lifecycle.check_transition(start, after_queue)
            for end in (action.on_success, action.on_failure):
                if end:
                    lifecycle.check_transition(after_queue, end)


def test_illegal_transition_names_both_states():
    with pytest.raises(lifecycle.IllegalTransition, match="A destroyed server cannot become running"):
        lifecycle.check_transition(S.DESTROYED, S.RUNNING)
    lifecycle.check_transition(S.RUNNING, S.RUNNING)  # staying put is not a change


def test_available_actions():
    assert lifecycle.available_actions(S.STOPPED) == [
        K.START,
        K.REINSTALL,
        K.SUSPEND,
        K.CHANGE_PLAN,
        K.HOSTNAME,
        K.PASSWORD,
        K.SSH_KEYS,
        K.LIMITS,
        K.DESTROY,
    ]
    assert lifecycle.available_actions(S.SUSPENDED) == [K.UNSUSPEND, K.CHANGE_PLAN, K.LIMITS, K.DESTROY]
    assert lifecycle.available_actions(S.DESTROYED) == []


def test_customers_may_only_run_their_everyday_actions():
    assert {k for k, a in lifecycle.ACTIONS.items() if a.customer_may} == {
        K.START,
        K.STOP,
        K.RESTART,
        K.REINSTALL,
        K.HOSTNAME,
        K.PASSWORD,
        K.SSH_KEYS,
    }

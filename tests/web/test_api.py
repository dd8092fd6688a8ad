"""The JSON API's tables agree with what it documents."""

from __future__ import annotations

import typing

from hyperhive.commands import verb
from hyperhive.web.api import ACTIONS, Action


def test_every_documented_action_is_one_c0re_command() -> None:
    assert set(ACTIONS) == set(typing.get_args(Action))
    made = {action: verb(make("alice", "why")) for action, make in ACTIONS.items()}
    assert made["purge"] == "destroy"
    assert made["revive"] == "spawn"
    assert made["cancel-turn"] == "cancel_turn"

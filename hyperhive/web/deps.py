"""What every handler may ask for: the hub, one hive's view, the login flows, the state dir.

The dashboard's parts live on `app.state` (put there by `create_app`) and reach
handlers through litestar's `Provide`, so a handler's signature says what it
uses. Names that come from the URL are checked here, once: a hive this
dashboard does not serve is 404, a hostile agent name 400, before any handler
body runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from hyperhive.config import HiveConfig
from hyperhive.names import check_agent
from hyperhive.statedir import StateDir
from hyperhive.web.hives import Hub
from hyperhive.web.hub import HiveView
from hyperhive.web.login import LoginFlows


@dataclass(frozen=True)
class Dashboard:
    """Everything the app is made of, on `app.state.dashboard`."""

    cfg: HiveConfig
    hub: Hub
    state_dir: StateDir
    logins: LoginFlows


def _parts(state: State) -> Dashboard:
    parts: Dashboard = state.dashboard
    return parts


def provide_hub(state: State) -> Hub:
    return _parts(state).hub


def provide_view(state: State, hive: FromPath[str]) -> HiveView:
    return _parts(state).hub.view(hive)


def provide_agent(name: FromPath[str]) -> str:
    return check_agent(name)


def provide_logins(state: State) -> LoginFlows:
    return _parts(state).logins


def provide_cfg(state: State) -> HiveConfig:
    return _parts(state).cfg


def provide_state_dir(state: State) -> StateDir:
    return _parts(state).state_dir


DEPENDENCIES = {
    "hub": Provide(provide_hub, sync_to_thread=False),
    "view": Provide(provide_view, sync_to_thread=False),
    "agent": Provide(provide_agent, sync_to_thread=False),
    "logins": Provide(provide_logins, sync_to_thread=False),
    "cfg": Provide(provide_cfg, sync_to_thread=False),
    "state_dir": Provide(provide_state_dir, sync_to_thread=False),
}

# What a handler writes to be given one of them.
HubDep = NamedDependency[Hub]
ViewDep = NamedDependency[HiveView]
AgentDep = NamedDependency[str]  # the `{name}` of the URL, checked
LoginsDep = NamedDependency[LoginFlows]
CfgDep = NamedDependency[HiveConfig]
StateDirDep = NamedDependency[StateDir]

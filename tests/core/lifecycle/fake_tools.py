"""Stand-ins for nixos-container, systemctl, journalctl, machinectl and nix-env.

    fake_tools.py TOOL ARGS...     (the tests put one wrapper script per tool on PATH)

Every call appends `[TOOL, *ARGS]` as one JSON line to `$FAKE_TOOLS/calls.jsonl`.
The state they answer from, kept small and in files so the tests can change it:

    $FAKE_CONF_DIR/<name>.conf        written by `nixos-container create`, read by `list`
    $FAKE_TOOLS/units/<unit>.json     the properties `systemctl show` prints
    $FAKE_TOOLS/journal/<name>        lines `journalctl -M <name>` / `-u <name>` prints
    $FAKE_TOOLS/fail/<tool>-<verb>    if present, the call prints it on stderr, exits 1

`journalctl -M` fails unless the machine's unit is active, as the real one does
for a stopped container.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

DEFAULTS = {
    "ActiveState": "inactive",
    "SubState": "dead",
    "Result": "success",
    "ExecMainCode": "0",
    "ExecMainStatus": "0",
    "InvocationID": "",
    "NeedDaemonReload": "no",
}


def home() -> Path:
    return Path(os.environ["FAKE_TOOLS"])


def conf_dir() -> Path:
    return Path(os.environ["FAKE_CONF_DIR"])


def unit_file(unit: str) -> Path:
    return home() / "units" / f"{unit}.json"


def read_unit(unit: str) -> dict[str, str]:
    props = dict(DEFAULTS)
    path = unit_file(unit)
    if path.exists():
        props.update(json.loads(path.read_text()))
    return props


def write_unit(unit: str, **props: str) -> None:
    path = unit_file(unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(props)
    path.write_text(json.dumps(current))


def container_unit(name: str) -> str:
    return f"container@{name}.service"


def die(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def nixos_container(args: list[str]) -> None:
    verb = args[0]
    if verb == "list":
        for path in sorted(conf_dir().glob("*.conf")):
            print(path.stem)
        return
    name = args[1]
    conf = conf_dir() / f"{name}.conf"
    if verb == "create":
        if conf.exists():
            die(f"nixos-container: container '{name}' already exists")
        if len(name) > 11:
            die(f"nixos-container: container name '{name}' is too long")
        flake = option(args, "--flake")
        lines = [
            "PRIVATE_NETWORK=1",
            "HOST_ADDRESS=10.233.1.1",
            "LOCAL_ADDRESS=10.233.1.2",
            "HOST_BRIDGE=",
            "HOST_PORT=",
            "AUTO_START=0",
        ]
        if flake is not None:
            lines.append(f"FLAKE={flake.split('#')[0]}")
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("".join(line + "\n" for line in lines))
        print("host IP is 10.233.1.1, container IP is 10.233.1.2", file=sys.stderr)
        return
    if not conf.exists():
        if verb == "destroy":
            return
        die(f"nixos-container: container '{name}' does not exist")
    unit = container_unit(name)
    if verb == "start":
        write_unit(
            unit,
            ActiveState="active",
            SubState="running",
            Result="success",
            ExecMainCode="0",
            ExecMainStatus="0",
            InvocationID=uuid.uuid4().hex,
        )
    elif verb == "stop":
        write_unit(
            unit,
            ActiveState="inactive",
            SubState="dead",
            Result="success",
            ExecMainCode="1",
            ExecMainStatus="0",
        )
    elif verb == "destroy":
        conf.unlink()
        write_unit(unit, ActiveState="inactive", SubState="dead")
    elif verb == "status":
        print("up" if read_unit(unit)["ActiveState"] == "active" else "down")
    elif verb != "update":
        die(f"nixos-container: unknown action '{verb}'")


def systemctl(args: list[str]) -> None:
    if args[0] == "daemon-reload":
        return
    if args[0] != "show":
        die(f"systemctl: unknown command {args[0]}")
    props = read_unit(args[1])
    for name in (option(args, "-p") or "").split(","):
        print(f"{name}={props.get(name, '')}")


def journalctl(args: list[str]) -> None:
    n = int(option(args, "-n") or 10)
    machine = option(args, "-M")
    if machine is not None:
        if read_unit(container_unit(machine))["ActiveState"] != "active":
            die(f"Failed to open machine '{machine}': No machine '{machine}' known")
        source = machine
    else:
        source = option(args, "-u") or ""
    path = home() / "journal" / source
    lines = path.read_text().splitlines() if path.exists() else ["-- No entries --"]
    for line in lines[-n:]:
        print(line)


def nothing(args: list[str]) -> None:
    """machinectl and nix-env: record the call, succeed."""


TOOLS: dict[str, Callable[[list[str]], None]] = {
    "nixos-container": nixos_container,
    "systemctl": systemctl,
    "journalctl": journalctl,
    "machinectl": nothing,
    "nix-env": nothing,
}


def main() -> None:
    tool, args = sys.argv[1], sys.argv[2:]
    with open(home() / "calls.jsonl", "a") as f:
        f.write(json.dumps([tool, *args]) + "\n")
    failing = home() / "fail" / f"{tool}-{args[0] if args else ''}"
    if failing.exists():
        print("some noise first", file=sys.stderr)
        die(failing.read_text().strip())
    TOOLS[tool](args)


if __name__ == "__main__":
    main()

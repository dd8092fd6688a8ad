"""The house's rules, read from the code: imports point down the layers, one place per rule.

Layers, top to bottom (a module may import its own layer or any layer below):

    cli, docgen                      entry points and generated docs
    core, harness, web               c0re, one agent's turn loop, the dashboard
    eventlog                         the sqlite event log and its projections
    service                          the service runtime (publishes hive.started)
    bus                              NATS
    events, commands                 the pure model
    foundations                      errors ids names statedir timefmt files procs backoff config
                                     waitfor

`harness` and `web` reach c0re over the bus, like any outside client: they may
import the pure `core.state`, never `core.service` or `core.lifecycle`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hyperhive"

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "__init__",
        "waitfor",
        "errors",
        "ids",
        "names",
        "statedir",
        "timefmt",
        "files",
        "procs",
        "lockfile",
        "backoff",
        "config",
    ),
    ("events", "commands"),
    ("bus",),
    ("service",),
    ("eventlog",),
    ("core", "harness", "web"),
    ("cli", "docgen"),
)
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
FORBIDDEN_PAIRS = {
    ("harness", "core.service"),
    ("harness", "core.lifecycle"),
    ("web", "core.service"),
    ("web", "core.lifecycle"),
}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(rel.parts), path


def top(dotted: str) -> str:
    return dotted.split(".", 1)[0]


def imported(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, hyperhive-relative module) of every hyperhive import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_parts = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hyperhive" or alias.name.startswith("hyperhive."):
                    yield node.lineno, alias.name.removeprefix("hyperhive").lstrip(".")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and (
                node.module == "hyperhive" or node.module.startswith("hyperhive.")
            ):
                target = node.module.removeprefix("hyperhive").lstrip(".")
            else:
                continue
            if target:
                yield node.lineno, target
            else:  # `from hyperhive import x`: each name is a module of the package
                for alias in node.names:
                    yield node.lineno, alias.name


def test_every_module_has_a_layer() -> None:
    missing = sorted({top(m) for m, _ in modules()} - set(LAYER_OF))
    assert not missing, f"put these in a layer of tests/test_layers.py: {missing}"


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=lambda v: str(v))
def test_imports_point_down_the_layers(module: str, path: Path) -> None:
    mine = LAYER_OF[top(module)]
    wrong = []
    for line, target in imported(path, module):
        theirs = LAYER_OF.get(top(target))
        if theirs is not None and theirs > mine:
            wrong.append(f"line {line}: imports hyperhive.{target} (a layer above)")
        for a, b in FORBIDDEN_PAIRS:
            if top(module) == a and (target == b or target.startswith(b + ".")):
                wrong.append(f"line {line}: {a} may not import hyperhive.{b} (use bus.rpc)")
    assert not wrong, f"hyperhive.{module}: " + "; ".join(wrong)


def test_the_layer_test_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "names.py"
    bad.write_text("from hyperhive.bus import subjects\nfrom . import errors\n")
    assert list(imported(bad, "names")) == [(1, "bus"), (2, "errors")]


# ---------------------------------------------------------------- one place per rule

SUBJECT_LITERAL = re.compile(r"^(hive\.[^.\s]+\.(evt|inbox|cmd)\b|\$JS\.)")
SUBJECTS_MODULE = "bus.subjects"


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """Every string constant of a file except docstrings; f-strings with `{}` for values."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    in_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for part in node.values:
                in_fstrings.add(id(part))
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    text += part.value
                else:
                    text += "{}"
            yield node.lineno, text
    for node in ast.walk(tree):
        skip = id(node) in docstrings or id(node) in in_fstrings
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and not skip:
            yield node.lineno, node.value


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=lambda v: str(v))
def test_only_bus_subjects_writes_subject_literals(module: str, path: Path) -> None:
    if module == SUBJECTS_MODULE:
        return
    found = [
        f"line {line}: {text!r}"
        for line, text in string_literals(path)
        if SUBJECT_LITERAL.match(text)
    ]
    assert not found, f"hyperhive.{module} spells subjects itself (use bus.subjects): {found}"


STATE_PATH_PARTS = re.compile(r"^(events\.sqlite|server\.(json|log|conf)|auth\.conf|last-port)$")


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=lambda v: str(v))
def test_only_statedir_names_state_files(module: str, path: Path) -> None:
    if module == "statedir":
        return
    found = [
        f"line {line}: {text!r}"
        for line, text in string_literals(path)
        if STATE_PATH_PARTS.match(text)
    ]
    assert not found, f"hyperhive.{module} builds state paths itself (use statedir): {found}"


# ---------------------------------------------------------------- tests sleep only on purpose

TESTS = Path(__file__).resolve().parent
SLEEP_CALL = re.compile(r"\b(?:asyncio|time)\.sleep\(")
SLEEP_MARK = "# sleep-ok:"


def test_every_sleep_in_the_tests_says_why_it_is_not_a_wait() -> None:
    """A test waits on an event or a condition with a deadline; a sleep says why it is not one."""
    unmarked = [
        f"{path.relative_to(TESTS)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != Path(__file__).name
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SLEEP_CALL.search(line) and SLEEP_MARK not in line
    ]
    assert not unmarked, f"mark deliberate sleeps with '{SLEEP_MARK} <reason>': {unmarked}"


def test_the_literal_check_sees_subjects_in_strings_and_f_strings(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text(
        '"""hive.h.evt.x in a docstring is prose."""\n'
        'A = f"hive.{h}.evt.{a}.turn.started"\n'
        'B = "$JS.API.INFO"\n'
        'C = "hive.started"\n'
    )
    hits = [text for _, text in string_literals(bad) if SUBJECT_LITERAL.match(text)]
    assert hits == ["hive.{}.evt.{}.turn.started", "$JS.API.INFO"]

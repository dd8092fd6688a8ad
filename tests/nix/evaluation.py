"""Hosts and agents' containers, evaluated by the real nixpkgs module system.

`Evaluator.evaluate` hands every configuration to nix/tests/eval (the stand-in
NixOS options and nixpkgs, nixpkgs' own lib) in one nix-instantiate run and
returns each one's view (nix/tests/eval/views.nix) as JSON data:

    evaluation = evaluator.evaluate(hosts={"mine": {"services": {"hyperhive": {...}}}})
    host = evaluation.host("mine")        # views.nix `host`: services, nats, etc, ...

    host = evaluator.host({"services": {"hyperhive": {...}}})   # just one

A configuration that fails to evaluate is evaluated once more, alone, when a test
asks for it, so the failure shows nix's own message.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.nix.nixcli import ROOT, Nix, NixError, nix_string

EVAL_DIR = ROOT / "nix" / "tests" / "eval"
# A second stand-in nixpkgs (the flake's nixpkgs-unstable): claude-code 2.1.0
# there, 1.0.0 in the first.
UNSTABLE = EVAL_DIR / "nixpkgs-unstable"
CLAUDE_STABLE = "claude-code-1.0.0"
CLAUDE_UNSTABLE = "claude-code-2.1.0"

View = dict[str, Any]


class EvaluationFailed(AssertionError):
    """A configuration did not evaluate; the message is nix's."""


@dataclass(frozen=True)
class Evaluation:
    """The views of one run; `host`/`container` fail with nix's words if one failed."""

    evaluator: Evaluator
    hosts: Mapping[str, Any]
    containers: Mapping[str, Any]
    host_configs: Mapping[str, Any]
    container_specs: Mapping[str, Any]
    _why: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    def host(self, name: str) -> View:
        return self._view("host", name, self.hosts, self.host_configs)

    def container(self, name: str) -> View:
        return self._view("container", name, self.containers, self.container_specs)

    def why(self, kind: str, name: str) -> str:
        """nix's message when this configuration is evaluated without catching failures."""
        if (kind, name) not in self._why:
            if kind == "host":
                message = self.evaluator.why(hosts={name: self.host_configs[name]})
            else:
                message = self.evaluator.why(containers={name: self.container_specs[name]})
            self._why[kind, name] = message
        return self._why[kind, name]

    def _view(
        self, kind: str, name: str, views: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> View:
        entry = views[name]
        if "ok" in entry:
            result: View = entry["ok"]
            return result
        raise EvaluationFailed(
            f"{kind} {name!r} does not evaluate: {self.why(kind, name)}\n"
            f"its configuration: {json.dumps(inputs[name], indent=1)}"
        )


@dataclass
class Evaluator:
    """Evaluates configurations with nixpkgs' lib at `lib` (see nix/tests/eval)."""

    nix: Nix
    lib: Path
    workdir: Path
    _runs: itertools.count[int] = field(default_factory=itertools.count)

    def evaluate(
        self,
        hosts: Mapping[str, Any] | None = None,
        containers: Mapping[str, Mapping[str, Any]] | None = None,
        probes: Sequence[Mapping[str, Any]] = (),
    ) -> Evaluation:
        hosts = dict(hosts or {})
        specs = dict(containers or {})
        answer = self._run(hosts, specs, probes, catch=True)
        return Evaluation(
            evaluator=self,
            hosts=answer["hosts"],
            containers=answer["containers"],
            host_configs=hosts,
            container_specs=specs,
        )

    def host(self, config: Mapping[str, Any]) -> View:
        """One host configuration's view."""
        return self.evaluate(hosts={"host": config}).host("host")

    def container(self, spec: Mapping[str, Any]) -> View:
        """One agent container's view (spec: name, packages, extraConfig, claudeNixpkgs)."""
        return self.evaluate(containers={"container": spec}).container("container")

    def why(
        self,
        hosts: Mapping[str, Any] | None = None,
        containers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> str:
        """nix's message for configurations that fail, evaluated without catching it."""
        try:
            self._run(dict(hosts or {}), dict(containers or {}), (), catch=False)
        except NixError as exc:
            return str(exc)
        return "(it evaluates on its own)"

    # ---------------------------------------------------------------- the run

    def _run(
        self,
        hosts: dict[str, Any],
        specs: dict[str, Mapping[str, Any]],
        probes: Sequence[Mapping[str, Any]],
        catch: bool,
    ) -> Any:
        run = next(self._runs)
        containers = {
            name: self._container_input(name, spec, self.workdir / f"extra-config-{run}-{i}.nix")
            for i, (name, spec) in enumerate(specs.items())
        }
        spec_file = self.workdir / f"spec-{run}.json"
        spec_file.write_text(
            json.dumps(
                {"hosts": hosts, "containers": containers, "probes": list(probes), "catch": catch}
            ),
            encoding="utf-8",
        )
        return self.nix.eval_file_json(
            EVAL_DIR, "-I", f"hyperhive-nixpkgs-lib={self.lib}", spec=str(spec_file)
        )

    def _container_input(
        self, name: str, spec: Mapping[str, Any], module_file: Path
    ) -> dict[str, Any]:
        """The spec as nix/tests/eval takes it: extraConfig as a module file."""
        known = {"name", "packages", "extraConfig", "claudeNixpkgs"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"container {name!r}: unknown keys {sorted(unknown)}")
        out = {k: v for k, v in spec.items() if k != "extraConfig"}
        text = spec.get("extraConfig", "")
        if text:
            module = self.nix.eval_json(
                f"{self.nix.import_lib()}.extraConfigModule {nix_string(text)}"
            )
            module_file.write_text(module, encoding="utf-8")
            out["extraConfigFile"] = str(module_file)
        return out

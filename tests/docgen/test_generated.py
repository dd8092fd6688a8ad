"""The generated docs are current, and they name every kind and every setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperhive.config import CONFIG_ENV, SETTINGS, load_config
from hyperhive.docgen import __main__ as docgen
from hyperhive.events import ALL_EVENTS, KINDS

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "stale: run `python -m hyperhive.docgen` and commit the result"


@pytest.mark.parametrize("rel", sorted(docgen.GENERATED))
def test_generated_doc_is_current(rel: str) -> None:
    path = ROOT / rel
    assert path.is_file(), f"{rel} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == docgen.GENERATED[rel](), f"{rel} is {REGENERATE}"


def test_check_mode_passes_on_the_committed_docs() -> None:
    assert docgen.main(["--check", "--root", str(ROOT)]) == 0


def test_check_mode_fails_naming_each_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert docgen.main(["--root", str(tmp_path)]) == 0
    (tmp_path / "docs" / "events.md").write_text("old\n", encoding="utf-8")
    (tmp_path / "docs" / "configuration.md").unlink()
    capsys.readouterr()
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "docs/events.md" in err
    assert "docs/configuration.md" in err
    assert "docs/events.schema.json" not in err
    assert (tmp_path / "docs" / "events.md").read_text(encoding="utf-8") == "old\n"


def test_generating_rewrites_only_what_changed_and_then_checks_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert docgen.main(["--root", str(tmp_path)]) == 0
    (tmp_path / "docs" / "events.md").write_text("old\n", encoding="utf-8")
    capsys.readouterr()
    assert docgen.main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote docs/events.md"]
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 0


@pytest.mark.parametrize("rel", sorted(docgen.GENERATED))
def test_generated_docs_are_deterministic_and_end_with_one_newline(rel: str) -> None:
    first, second = docgen.GENERATED[rel](), docgen.GENERATED[rel]()
    assert first == second
    assert first.endswith("\n")
    assert not first.endswith("\n\n")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_event_kind_has_a_section_in_events_md(kind: str) -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert f"\n### `{kind}`\n" in text


def test_events_md_shows_wire_names_not_python_names() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert "| `from` | string | required |" in text
    assert "from_" not in text


def test_events_md_documents_the_envelope_and_raw_events() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    for name in ("kind", "id", "ts", "hive", "agent", "source", "v"):
        assert f"| `{name}` |" in text
    assert "RawEvent" in text


def test_events_schema_describes_every_kind() -> None:
    schema = json.loads((ROOT / "docs" / "events.schema.json").read_text(encoding="utf-8"))
    tags = {
        d["properties"]["kind"]["enum"][0]
        for d in schema["$defs"].values()
        if "kind" in d.get("properties", {})
    }
    assert tags == set(KINDS)
    message = schema["$defs"]["MessageSent"]
    assert "from" in message["required"]
    assert len(schema["anyOf"]) == len(ALL_EVENTS)


@pytest.mark.parametrize("env", [s.env for s in SETTINGS] + [CONFIG_ENV])
def test_every_setting_env_var_is_in_configuration_md(env: str) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"`{env}`" in text


@pytest.mark.parametrize("key", [s.key for s in SETTINGS])
def test_every_setting_has_a_row_in_configuration_md(key: str) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"\n| `{key}` |" in text


def test_configuration_md_example_is_a_valid_hive_toml(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "hive.toml"
    path.write_text(example, encoding="utf-8")
    cfg = load_config(config_path=str(path), env={})
    assert cfg.agents, "the example should show an [agents.<name>] table"


def test_generated_docs_name_no_local_paths() -> None:
    for rel, render in docgen.GENERATED.items():
        text = render()
        assert str(ROOT) not in text, rel

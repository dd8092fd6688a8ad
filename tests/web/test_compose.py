"""What the operator types: `@agent message` and an agent page's slash commands."""

from __future__ import annotations

import pytest

from hyperhive.web.compose import (
    InvalidInput,
    SendMessage,
    SlashCommand,
    parse_agent_input,
    parse_compose,
)


@pytest.mark.parametrize(
    ("text", "to", "body"),
    [
        ("@alice hello", "alice", "hello"),
        ("  @bob:   the build is green  ", "bob", "the build is green"),
        ("@carol, two\nlines", "carol", "two\nlines"),
    ],
)
def test_an_at_name_is_a_message_to_that_agent(text: str, to: str, body: str) -> None:
    assert parse_compose(text) == SendMessage(to=to, body=body)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("hello", "start with @<agent>"),
        ("@ hello", "invalid agent name"),
        ("@.. hello", "invalid agent name"),
        ("@a/b hello", "invalid agent name"),
        ("@alice", "nothing to send to alice"),
        ("@operator hi", "your own inbox"),
    ],
)
def test_what_is_not_a_message_is_refused_saying_what_to_type(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        parse_compose(text)


def test_a_line_on_an_agents_page_is_a_message_or_a_command() -> None:
    assert parse_agent_input("alice", "hi there") == SendMessage("alice", "hi there")
    assert parse_agent_input("alice", "//etc is a path") == SendMessage("alice", "/etc is a path")
    assert parse_agent_input("alice", "/help") == SlashCommand("help")
    assert parse_agent_input("alice", "/MODEL  opus ") == SlashCommand("model", "opus")
    for cmd in ("clear", "cancel", "compact"):
        assert parse_agent_input("alice", f"/{cmd}") == SlashCommand(cmd)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "nothing to send"),
        ("/model", "needs a model name"),
        ("/nope", "unknown command /nope"),
        ("/clear all", "no argument"),
    ],
)
def test_a_bad_slash_command_is_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        parse_agent_input("alice", text)

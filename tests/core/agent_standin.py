"""A stand-in agent for c0re's tests: a real NATS client with the agent's own credentials.

Run by the process backend as `python agent_standin.py <agent>` (until the real
harness drives claude). It waits on its inbox with `recv` and obeys simple
messages, so tests can drive a whole hive:

    send:<to>:<body>       send a message
    ask:<ttl>:<question>   ask the operator
    status:<text>          set its status
    crash:<code>           exit at once with that status
    anything else          recorded, nothing more

Every message it receives is appended, as one JSON line, to
`<state>/agents/<agent>/state/received.ndjson`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from hyperhive.bus.connect import open_nats
from hyperhive.bus.inbox import recv
from hyperhive.bus.rpc import command
from hyperhive.commands import verbs as v
from hyperhive.config import load_config
from hyperhive.names import agent_role


def append(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


async def main(agent: str) -> None:
    cfg = load_config()
    record = Path(cfg.state_dir) / "agents" / agent / "state" / "received.ndjson"
    async with open_nats(cfg, agent_role(agent), f"standin-{agent}", wait=True) as nc:
        while True:
            got = await recv(nc, cfg.hive, agent, wait=180)
            if got is None or got.message is None:
                continue
            m = got.message
            line = {
                "msg_id": m.msg_id,
                "from": m.from_,
                "body": m.body,
                "system_kind": m.system_kind,
            }
            append(record, json.dumps(line))
            verb, _, rest = m.body.partition(":")
            if verb == "send":
                to, _, body = rest.partition(":")
                await command(nc, cfg.hive, agent, v.Send(to=to, body=body))
            elif verb == "ask":
                ttl, _, question = rest.partition(":")
                await command(
                    nc, cfg.hive, agent, v.AskOperator(question=question, ttl_seconds=int(ttl))
                )
            elif verb == "status":
                await command(nc, cfg.hive, agent, v.SetStatus(text=rest))
            elif verb == "crash":
                os._exit(int(rest or "3"))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else os.environ["HYPERHIVE_AGENT"]))

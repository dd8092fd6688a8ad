"""A stand-in for the agent harness, for the process backend's tests.

    python standin.py [--exit-after MS] [--status N] [--ignore-term] [--child]
                      [--stderr TEXT] [--long N] ARGS...

Prints its argv, its working dir and its hive environment (one `env KEY=VALUE`
line per HYPERHIVE_*, CLAUDE_* and STANDIN_* variable), then `standin: ready`,
and sleeps until signalled. SIGTERM ends it with status 0 (saying so first)
unless --ignore-term; --exit-after ends it after MS milliseconds with --status.
--child starts a grandchild in its process group and prints its pid.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import time
from types import FrameType


def on_term(signum: int, frame: FrameType | None) -> None:
    print("standin: SIGTERM", flush=True)
    sys.exit(0)


def ignore_term(signum: int, frame: FrameType | None) -> None:
    print("standin: ignoring SIGTERM", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit-after", type=int)
    parser.add_argument("--status", type=int, default=0)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--stderr", default="")
    parser.add_argument("--long", type=int, default=0)
    parser.add_argument("rest", nargs="*")
    args, _ = parser.parse_known_args()  # other args are just printed
    signal.signal(signal.SIGTERM, ignore_term if args.ignore_term else on_term)
    assert isinstance(sys.stdout, io.TextIOWrapper)
    sys.stdout.reconfigure(line_buffering=True)
    print(f"standin: argv={json.dumps(sys.argv[1:])}")
    print(f"standin: cwd={os.getcwd()}")
    for key in sorted(os.environ):
        if key.startswith(("HYPERHIVE_", "CLAUDE_", "STANDIN_")):
            print(f"env {key}={os.environ[key]}")
    if args.stderr:
        print(args.stderr, file=sys.stderr, flush=True)
    if args.long:
        print("L" * args.long)
    if args.child:
        child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
        print(f"standin: child={child.pid}")
    print("standin: ready")
    if args.exit_after is not None:
        time.sleep(args.exit_after / 1000)  # sleep-ok: the stand-in's own lifetime
        sys.exit(args.status)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

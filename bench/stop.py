"""`python -m bench.stop [N]`: how long `hyperhive up` takes to start, and to stop on Ctrl-C.

Each of N runs starts `hyperhive up` on a fresh temp state dir (its own embedded
nats-server, the dashboard on any free port, no hive.toml), waits for the line
with the dashboard's URL, and sends SIGINT at once: the moment a stop is most
likely to land in the middle of a service connecting. Printed: start (to the
URL line) and stop (SIGINT to exit) per run, the median and slowest of each, and
how many stops took longer than 3 s (a lost cancel waits out a 10 s grace).
There is no raw wall to set these beside; they are figures in their own right.
It exits 0 whatever they are, like `make bench`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import BIN, state_env

SLOW = 3.0


def one(n: int) -> tuple[float, float, int]:
    tmp = Path(tempfile.mkdtemp(prefix="hyperhive-bench-stop-"))
    env = state_env(tmp / "state")  # as the tests run `up`: no hive.toml, any free port
    try:
        began = time.monotonic()
        proc = subprocess.Popen(
            [str(BIN / "hyperhive"), "up"],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        said: list[str] = []
        while line := proc.stdout.readline():
            said.append(line)
            if "http://" in line:
                break
        else:
            raise SystemExit(f"run {n}: `hyperhive up` ended before it was up:\n{''.join(said)}")
        started = time.monotonic() - began
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.stdout.read()
        code = proc.wait()
        return started, time.monotonic() - asked, code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(runs: int) -> int:
    starts: list[float] = []
    stops: list[float] = []
    for n in range(runs):
        started, stopped, code = one(n)
        starts.append(started)
        stops.append(stopped)
        print(f"run {n + 1:>2}: up in {started:.2f} s, stopped in {stopped:.2f} s (exit {code})")
    starts.sort()
    stops.sort()
    slow = sum(s > SLOW for s in stops)
    print(f"start: median {starts[runs // 2]:.2f} s, slowest {starts[-1]:.2f} s")
    print(f"stop:  median {stops[runs // 2]:.2f} s, slowest {stops[-1]:.2f} s")
    print(f"stops over {SLOW:.0f} s: {slow} of {runs}")
    return 0  # like `make bench`: it reports, it does not gate


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))

"""`python -m bench` (`make bench`): hyperhive's bus, c0re and harness against the raw walls.

python -m bench                  full run (~4.5 min on 2 cores)
python -m bench --quick          short run (< 1 min)
python -m bench --events N       N events per throughput measurement
python -m bench --log-events N   N events in the log c0re restarts on (default 1,000,000)
python -m bench --only c0re      c0re's section alone (or --only bus: all but c0re and harness)
python -m bench --only harness   the harness's section alone (< 1 min)
python -m bench --only dashboard the dashboard's section alone (~2 min; Chromium)
python -m bench --only cluster   a 3-node cluster (R3) beside one server, and kill -9 failovers
"""

from __future__ import annotations

import argparse
import sys

from bench.run import main


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run: fewer events, 3 s latency")
    ap.add_argument("--events", type=int, default=None, metavar="N", help="events per measurement")
    ap.add_argument(
        "--log-events",
        type=int,
        default=None,
        metavar="N",
        help="events in the log c0re restarts on (default 1,000,000; 50,000 with --quick)",
    )
    ap.add_argument(
        "--only",
        choices=("bus", "c0re", "harness", "dashboard", "cluster"),
        default=None,
        help="run one section",
    )
    args = ap.parse_args(argv)
    if args.events is not None and args.events < 1000:
        ap.error("--events must be at least 1000")
    if args.log_events is not None and args.log_events < 1000:
        ap.error("--log-events must be at least 1000")
    return args


if __name__ == "__main__":
    a = parse(sys.argv[1:])
    sys.exit(main(a.events, a.quick, a.log_events, a.only))

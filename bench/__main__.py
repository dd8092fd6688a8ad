"""`python -m bench` (`make bench`): hyperhive's bus against the raw walls, one run.

python -m bench              full run (~2 min on 2 cores)
python -m bench --quick      short run (< 30 s)
python -m bench --events N   N events per throughput measurement
"""

from __future__ import annotations

import argparse
import sys

from bench.run import main


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run: fewer events, 3 s latency")
    ap.add_argument("--events", type=int, default=None, metavar="N", help="events per measurement")
    args = ap.parse_args(argv)
    if args.events is not None and args.events < 1000:
        ap.error("--events must be at least 1000")
    return args


if __name__ == "__main__":
    a = parse(sys.argv[1:])
    sys.exit(main(a.events, a.quick))

"""python -m emulator --fleet FILE [--host 127.0.0.1] [--port 0] [--page-size N] [--create-delay S] [--lro-polls N]
    [--compute-refill-scale X] [--compute-capacity-scale X] [--rate-limit-header-form windowed|repeated|suffix]

Prints `endpoint=...` and `ca_bundle=...`, then serves until SIGTERM or SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .compute_limits import HEADER_FORMS
from .service import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Local HTTPS emulator of ARM (Compute).")
    parser.add_argument("--fleet", required=True, help="fleet file (plain ARM JSON, see emulator/README.md)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--page-size", type=int, default=100, help="items per list page before nextLink")
    parser.add_argument("--create-delay", type=float, default=0.0, help="seconds a new instance stays Creating")
    parser.add_argument("--lro-polls", type=int, default=1, help="status polls answered InProgress per operation")
    parser.add_argument("--lro-seconds", type=float, default=60.0, help="an unpolled operation ends after this")
    parser.add_argument(
        "--compute-refill-scale", type=float, default=1.0, help="speed up Compute's bucket refill (1 = Azure's rates)"
    )
    parser.add_argument(
        "--compute-capacity-scale", type=float, default=1.0, help="scale Compute's bucket capacity (1 = Azure's)"
    )
    parser.add_argument(
        "--rate-limit-header-form",
        choices=HEADER_FORMS,
        default=None,
        help="how x-ms-ratelimit-remaining-resource names Compute's buckets (default: the fleet's rateLimitHeaderForm)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        emulator = Emulator.start(
            args.fleet,
            host=args.host,
            port=args.port,
            page_size=args.page_size,
            create_delay=args.create_delay,
            lro_polls=args.lro_polls,
            lro_seconds=args.lro_seconds,
            compute_refill_scale=args.compute_refill_scale,
            compute_capacity_scale=args.compute_capacity_scale,
            rate_limit_header_form=args.rate_limit_header_form,
        )
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    print(f"endpoint={emulator.endpoint}", flush=True)
    print(f"ca_bundle={emulator.ca_bundle}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

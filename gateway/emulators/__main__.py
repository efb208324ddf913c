"""``python -m gateway.emulators --port-base 18100``: serve the four emulators on four ports."""

from __future__ import annotations

import argparse

import uvloop

from gateway.edge.serving import BoundApp, bind, serve_forever
from gateway.emulators import KINDS, create_emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.emulators", description="Serve the four emulators on four ports.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--port-base",
        type=int,
        default=18100,
        help="first port; the kinds get port-base + 0..3 in the order " + ", ".join(KINDS),
    )
    args = parser.parse_args(argv)
    bound = {
        kind: BoundApp(create_emulator(kind), bind(args.host, args.port_base + i))
        for i, kind in enumerate(KINDS)
    }
    for kind, b in bound.items():
        print(f"{kind:<10} {b.url}", flush=True)
    uvloop.run(serve_forever(bound))


if __name__ == "__main__":
    main()

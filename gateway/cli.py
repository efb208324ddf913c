"""Command line: ``python -m gateway {serve,demo,check-config,schema}``."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn
import uvloop

from gateway.app import CONFIG_ENV, create_app
from gateway.config import ConfigError, load_config
from gateway.serving import BoundApp, bind, serve_forever

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        print(f"error: give --config FILE or set {CONFIG_ENV}", file=sys.stderr)
        return 2
    config = load_config(path)
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    if args.workers > 1:
        # Workers import the app themselves: hand them the config path.
        os.environ[CONFIG_ENV] = os.path.abspath(path)
        uvicorn.run(
            "gateway.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            log_level=args.log_level,
            timeout_keep_alive=int(config.server.keep_alive_seconds),
        )
    else:
        uvicorn.run(create_app(config), host=host, port=port, log_level=args.log_level,
                    timeout_keep_alive=int(config.server.keep_alive_seconds))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import demo_servers  # the emulators load only for the demo

    config, emulators = demo_servers(host=args.host, port=args.port, latency_ms=args.latency_ms)
    gateway = BoundApp(create_app(config), bind(args.host, args.port))
    for name, bound in emulators.items():
        print(f"emulator {name:<10} {bound.url}", flush=True)
    print(f"gateway             {gateway.url}/graphql  (GraphiQL in a browser)", flush=True)
    uvloop.run(serve_forever({"gateway": gateway, **emulators}, log_level=args.log_level))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    names = ", ".join(f"{s.name} ({s.kind.value})" for s in config.sources)
    print(f"{args.file}: ok: {len(config.sources)} sources: {names}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from gateway.graph import print_sdl

    sys.stdout.write(print_sdl(federation=args.federation))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway", description="One GraphQL API over many product catalogues."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gateway for a configuration file")
    serve.add_argument("--config", help=f"TOML file (default: ${CONFIG_ENV})")
    serve.add_argument("--host", help="default: [server] host")
    serve.add_argument("--port", type=int, help="default: [server] port")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="serve the gateway on the embedded emulators")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--latency-ms", type=int, default=0, help="latency added by each emulator")
    demo.add_argument("--log-level", default="info")
    demo.set_defaults(run=_demo)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(run=_check_config)

    schema = commands.add_parser("schema", help="print the GraphQL SDL")
    schema.add_argument("--federation", action="store_true",
                        help="the Apollo Federation 2 subgraph SDL")
    schema.set_defaults(run=_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    return code

"""Command line: ``catalogue-gateway {serve,demo,check-config,schema}``, or ``python -m gateway``.

Every option says what it does and what its default is (``--help`` of each subcommand).

A command imports what it needs when it runs: ``--help`` and a usage error load no server, no
app, no schema and no pydantic (tests/test_cli.py checks it), so they answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import __version__

if TYPE_CHECKING:
    from gateway.config import Config

__all__ = ["main"]

PROG = "catalogue-gateway"
# gateway.edge.app.CONFIG_ENV and gateway.edge.serving.LOG_LEVELS, named here for --help without
# importing the app or uvicorn (tests/test_cli.py checks they are the same).
CONFIG_ENV = "GATEWAY_CONFIG"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
CHURN_DEFAULT_SECONDS = 5.0  # demo --churn given no value
CHURN_SECONDS = (0.2, 3600.0)  # the bounds of demo --churn SECONDS
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.config import config_from_text, read_config_text
    from gateway.edge.app import create_app
    from gateway.edge.serving import (
        GatewayServer,
        freeze_startup_heap,
        serve_text,
        serve_workers,
        uvicorn_options,
    )
    from gateway.observability.logs import log_config

    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        print(f"error: give --config FILE or set {CONFIG_ENV}", file=sys.stderr)
        return 2
    text = read_config_text(path)
    config = config_from_text(text, origin=path)
    _warn(path, config)
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    level = args.log_level or config.logging.level
    # uvicorn's own access line is off: the gateway's line per GraphQL request replaces it.
    options = {"host": host, "port": port, "log_level": level, "access_log": False,
               "log_config": log_config(level, config.logging.format),
               **uvicorn_options(config.server)}
    if args.workers > 1:
        if config.server.cursor_secret is None:
            print("warning: no [server] cursor_secret: each worker signs cursors with its own "
                  "random secret, so a cursor may be refused by another worker", file=sys.stderr)
        with _multiprocess_metrics(), tempfile.TemporaryDirectory(prefix="gateway-") as run:
            # Workers import the app themselves: hand them the path of the checked copy of the
            # file that the supervisor keeps (serve_workers).
            served = Path(run) / "gateway.toml"
            serve_text(text, served)
            os.environ[CONFIG_ENV] = str(served)
            _metrics_port(config, host, None)
            serve_workers(uvicorn.Config("gateway.edge.app:app_from_env", factory=True,
                                         workers=args.workers, **options),
                          source=Path(path).resolve(), served=served)
    else:
        app = create_app(config, config_path=path)
        _metrics_port(config, host, app)
        freeze_startup_heap()
        # uvicorn.run's server, with the gateway's stop hooks (streams end before it waits).
        server = GatewayServer(uvicorn.Config(app, **options))
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            return STARTUP_FAILURE
    return 0


@contextlib.contextmanager
def _multiprocess_metrics() -> Iterator[None]:
    """Workers write their metrics to files in one directory, so that a scrape of any of them
    (or of ``[metrics] port``) adds every worker's numbers up. One given in the environment is
    used as it is; else a temporary one, removed at exit."""
    from gateway.observability.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def _metrics_port(config: Config, host: str, app: object) -> None:
    """``[metrics] port``: /metrics served from this process on a port of its own (a thread):
    the app's metrics, or in multiprocess mode every worker's."""
    if not config.metrics.enabled or config.metrics.port is None:
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    if app is None:
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = app.state.runtime.metrics.registry  # type: ignore[attr-defined]
    start_http_server(config.metrics.port, addr=host, registry=registry)


def _demo(args: argparse.Namespace) -> int:
    import uvloop

    from gateway.demo import Churn, demo_servers  # the emulators load only for the demo
    from gateway.edge.app import create_app
    from gateway.edge.serving import BoundApp, bind, serve_forever
    from gateway.emulators import DEMO_TOKENS

    try:  # the gateway's port first: a busy one is one line, not a traceback
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror} (another "
              "gateway, or another program, holds it): stop it, or choose another port, e.g. "
              f"make run PORT={args.port + 1 if args.port else 8001}", file=sys.stderr)
        return 1
    config, emulators = demo_servers(host=args.host, port=sock.getsockname()[1],
                                     latency_ms=args.latency_ms)
    gateway = BoundApp(create_app(config), sock)
    churn = Churn.of(emulators, args.churn) if args.churn is not None else None

    def ready() -> None:
        print(_banner(gateway.url, {kind: b.url for kind, b in emulators.items()}, DEMO_TOKENS,
                      args.latency_ms, args.churn), flush=True)
        if churn is not None:
            churn.start()  # after the banner: its lines follow it

    try:
        uvloop.run(serve_forever({"gateway": gateway, **emulators}, log_level=args.log_level,
                                 on_ready=ready))
    finally:
        if churn is not None:
            churn.stop()
    return 0


def _banner(gateway: str, emulators: Mapping[str, str], tokens: Mapping[str, str],
            latency_ms: int, churn_seconds: float | None = None) -> str:
    """The demo's one start-up message: where everything is, and how to stop."""
    latency = f", {latency_ms} ms added to each answer" if latency_ms else ""
    churn = ([f"Every {churn_seconds:g} s a random emulator's data changes (a churn: line each)."]
             if churn_seconds is not None else [])
    lines = [
        f"Catalogue gateway demo: the gateway over four emulated catalogues{latency}.",
        f"  GraphQL    {gateway}/graphql",
        f"  GraphiQL   {gateway}/graphql  (open it in a browser)",
        "  emulators  (each accepts its demo token)",
        *(f"    {kind:<10} {url:<24} {tokens[kind]}" for kind, url in emulators.items()),
        *churn,
        "Press Ctrl+C to stop. One line per GraphQL request follows.",
    ]
    return "\n".join(lines)


def _churn_seconds(value: str) -> float:
    """``--churn``'s value: seconds within :data:`CHURN_SECONDS`."""
    low, high = CHURN_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not low <= seconds <= high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{value} is outside {low:g}..{high:g} seconds")
    return seconds


def _check_config(args: argparse.Namespace) -> int:
    from gateway.config import load_config

    config = load_config(args.file, check_environment=not args.no_env)
    _warn(args.file, config)
    count = len(config.sources)
    names = ", ".join(f"{s.name} ({s.kind.value})" for s in config.sources)
    unchecked = " (environment variables not checked)" if args.no_env else ""
    print(f"{args.file}: ok{unchecked}: {count} source{'' if count == 1 else 's'}: {names}")
    return 0


def _warn(path: str, config: Config) -> None:
    """One ``warning:`` line per pair of settings that contradict each other."""
    from gateway.config import config_warnings

    for warning in config_warnings(config):
        print(f"warning: {path}: {warning}", file=sys.stderr)


def _config_schema(args: argparse.Namespace) -> int:
    from gateway.config.reference import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from gateway.graph import print_sdl

    sys.stdout.write(print_sdl(federation=args.federation))
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: …)" to an option's help unless the help already says its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text:
            return text
        return super()._get_help_string(action)


def _log_level(parser: argparse.ArgumentParser, what: str, default: str | None = "info") -> None:
    parser.add_argument("--log-level", default=default, choices=LOG_LEVELS, metavar="LEVEL",
                        help=f"{what}; one of {', '.join(LOG_LEVELS)}")


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The command line's parser, its usage under ``prog``."""
    root = argparse.ArgumentParser(
        prog=prog, formatter_class=_HelpFormatter,
        description="One GraphQL API over many product catalogues (CareCloud, Joptic, "
                    "Axim Commerce, Comestri).")
    root.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        description = summary[0].upper() + summary[1:] + "."
        return commands.add_parser(name, help=summary, description=description,
                                   formatter_class=_HelpFormatter)

    serve = command("serve", "serve the gateway for a configuration file")
    serve.add_argument("--config", metavar="FILE",
                       help=f"the TOML configuration (default: ${CONFIG_ENV})")
    serve.add_argument("--host", help="interface to listen on (default: [server] host of the "
                                      "configuration, itself 127.0.0.1 by default)")
    serve.add_argument("--port", type=int, help="port to listen on (default: [server] port of "
                                                "the configuration, itself 8000 by default)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="worker processes (share a Redis cache between them)")
    _log_level(serve, "log level of the server and the gateway (default: [logging] level of "
                      "the configuration, itself info by default)", default=None)
    serve.set_defaults(run=_serve)

    demo = command("demo", "serve the gateway over the four embedded emulators "
                           "(make run runs it)")
    demo.add_argument("--host", default="127.0.0.1", help="interface of the gateway")
    demo.add_argument("--port", type=int, default=8000,
                      help="port of the gateway (0: any free port); the emulators get free ports")
    demo.add_argument("--latency-ms", type=int, default=0, metavar="MS",
                      help="latency each emulator adds to every answer, to feel a real upstream")
    demo.add_argument("--churn", nargs="?", type=_churn_seconds, const=CHURN_DEFAULT_SECONDS,
                      metavar="SECONDS",
                      help=f"every SECONDS ({CHURN_SECONDS[0]:g}..{CHURN_SECONDS[1]:g}; "
                           f"{CHURN_DEFAULT_SECONDS:g} when given no value) change a random "
                           "emulator's data: create, rename or delete a group or product, one "
                           "'churn:' line each, so change events arrive (default: off)")
    _log_level(demo, "log level; info shows one line per GraphQL request, debug adds the "
                     "servers' own messages")
    demo.set_defaults(run=_demo)

    check = command("check-config", "validate a configuration file: every problem in one pass, "
                                    "exit status 2 if there is any")
    check.add_argument("file", help="the TOML configuration file")
    check.add_argument("--no-env", action="store_true",
                       help="check everything but the environment variables the file names "
                            "(token_env, cursor_secret_env, secret_env): for a machine without "
                            "the secrets (default: they must be set)")
    check.set_defaults(run=_check_config)

    config_schema = command("config-schema", "print the JSON Schema of the configuration file "
                                             "(for editors: see docs/configuration.md)")
    config_schema.add_argument("--output", metavar="FILE",
                               help="write it to FILE (default: standard output)")
    config_schema.set_defaults(run=_config_schema)

    schema = command("schema", "print the GraphQL schema (SDL)")
    schema.add_argument("--federation", action="store_true",
                        help="print the Apollo Federation 2 subgraph schema instead of the "
                             "plain one (default: off)")
    schema.set_defaults(run=_schema)
    return root


def main(argv: list[str] | None = None, *, prog: str = PROG) -> int:
    args = parser(prog).parse_args(argv)
    from gateway.config import ConfigError  # after parsing: --help loads no pydantic

    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        if exc.unset_variables:
            print(_how_to_set(exc.unset_variables, args), file=sys.stderr)
        return 2
    return code


def _how_to_set(variables: tuple[str, ...], args: argparse.Namespace) -> str:
    """The line after the problems when environment variables are unset: how to set them."""
    exports = " ".join(f"{variable}=…" for variable in variables)
    text = f"Set {', '.join(variables)} in the environment (e.g. `export {exports}`)"
    if args.command == "check-config":
        return f"{text}, or check the rest with `check-config --no-env {args.file}`."
    return f"{text}."

"""``commissaire-tasks``: run, call and watch services from the shell.

::

    commissaire-tasks up                      # private Redis + one worker per service module
    commissaire-tasks run myservice[:MyService] -c 2   # a module's services, in the foreground
    commissaire-tasks call simple.add 1 2     # -> 3
    commissaire-tasks call simple.add x=1 y=2
    commissaire-tasks status [SERVICE...]     # queues, depths, dead letters, workers; exit 1 ...
    commissaire-tasks services [--json]       # live services, methods and parameters
    commissaire-tasks unsubscribe SERVICE     # storage stops queueing its notifications
    commissaire-tasks flower                  # Flower behind basic auth
    commissaire-tasks bridge                  # serve clients of the original Commissaire bus
    commissaire-tasks serve                   # the REST API v0 and the status page

The options of :func:`~commissaire_tasks.config.add_service_arguments`
(``--bus-uri``, ``--bus-exchange``, ``--config-file``) go before the command and
override ``COMMISSAIRE_*`` for this command and the processes it starts; the
environment of the CLI itself is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._cli_common import app_for as _app_for
from ._cli_common import describe_error as _describe_error
from ._cli_common import positive_float as _positive_float
from ._cli_common import positive_int as _positive_int
from .cli_inspect import add_inspect_commands
from .config import (
    ENV_BROKER_URL,
    ENV_CONFIG_FILE,
    ENV_EXCHANGE,
    add_service_arguments,
)
from .errors import BusError, CommissaireTasksError
from .http.serve import add_serve_command

__all__ = ["build_parser", "main", "parse_call_arguments"]

#: ``name=value``: a keyword argument of ``call`` (anything else is positional).
_KEYWORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
#: Exit code for a command line that is wrong (argparse's too).
EXIT_USAGE = 2
#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 failed, 2 bad command line)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not args.passes_extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.extra = extra
    environ = _environ(args)
    try:
        return int(args.handler(args, environ))
    except CommissaireTasksError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while waiting: the shell's convention, no traceback
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commissaire-tasks", description="Run, call and watch commissaire-tasks services."
    )
    add_service_arguments(parser)
    parser.set_defaults(passes_extra=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_up(commands)
    _add_run(commands)
    _add_call(commands)
    add_inspect_commands(commands)
    _add_flower(commands)
    _add_dead_letters(commands)
    _add_bridge(commands)
    add_serve_command(commands)
    return parser


def _environ(args: argparse.Namespace) -> dict[str, str]:
    """The environment with the top-level options applied (for settings and children)."""
    overrides = {
        ENV_BROKER_URL: args.bus_uri,
        ENV_EXCHANGE: args.bus_exchange,
        ENV_CONFIG_FILE: str(Path(args.config_file).resolve()) if args.config_file else None,
    }
    return {**os.environ, **{k: v for k, v in overrides.items() if v}}


def _overridden(environ: Mapping[str, str]) -> bool:
    return any(environ.get(k) != os.environ.get(k) for k in (ENV_BROKER_URL, ENV_EXCHANGE))


# -- up -------------------------------------------------------------------------------------


def _add_up(commands: Any) -> None:
    from .ops.embedded import DEFAULT_DATA_DIR, DEFAULT_PORT

    up = commands.add_parser(
        "up",
        help="a broker (unless COMMISSAIRE_BROKER_URL is set) and a worker per service module",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(DEFAULT_DATA_DIR),
        help=f"embedded Redis data and secrets key (default ./{DEFAULT_DATA_DIR})",
    )
    up.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"embedded Redis port (default {DEFAULT_PORT}; another if busy)",
    )
    up.add_argument(
        "--concurrency",
        "-c",
        type=_positive_int,
        default=None,
        help="pool processes per worker (default: CPU count)",
    )
    up.add_argument("--loglevel", "-l", default="INFO", help="worker log level (default INFO)")
    up.add_argument(
        "--stop-timeout",
        type=_positive_float,
        default=30.0,
        help="seconds workers get to finish running calls on stop (default 30)",
    )
    up.set_defaults(handler=_up)


def _up(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .ops.up import UpOptions, run_up

    options = UpOptions(
        data_dir=args.data_dir,
        port=args.port,
        concurrency=args.concurrency,
        loglevel=args.loglevel,
        stop_timeout_s=args.stop_timeout,
    )
    return run_up(options, environ)


# -- run ------------------------------------------------------------------------------------


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run the services of MODULE (or only MODULE:Class) in a foreground worker",
        description="Like `nameko run`: one `celery worker` on the services' queues, in the "
        "foreground; Ctrl-C stops it warm. MODULE is found in the current folder first. "
        "Further options go to `celery worker` (e.g. -n NAME, --config-file FILE).",
    )
    run.add_argument("target", metavar="MODULE[:Class]", help="e.g. myservice or myservice:My")
    run.add_argument("--concurrency", "-c", type=_positive_int, default=None, help="pool processes")
    run.add_argument("--loglevel", "-l", default="INFO", help="log level (default INFO)")
    run.set_defaults(handler=_run, passes_extra=True)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .ops.run import exec_worker, run_command

    extra = [a for a in args.extra if a != "--"]
    command = run_command(args.target, environ, args.concurrency, args.loglevel, extra)
    print(f"Running {', '.join(command.services)} from {args.target}", file=sys.stderr, flush=True)
    exec_worker(command)
    return 1  # not reached: the worker replaced this process


# -- call -----------------------------------------------------------------------------------


def _add_call(commands: Any) -> None:
    call = commands.add_parser(
        "call",
        help="call a method and print its result as JSON",
        description="Arguments are positional, or all name=value; each value is parsed as "
        "JSON when it parses (1 is a number, '\"1\"' a string, [1,2] a list), else kept as text.",
    )
    call.add_argument("routing_key", metavar="ROUTING_KEY", help="<service>.<method>")
    call.add_argument("arguments", nargs="*", metavar="ARG", help="VALUE or NAME=VALUE")
    call.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="seconds to wait (default $COMMISSAIRE_CALL_TIMEOUT or 30)",
    )
    call.add_argument(
        "--progress",
        action="store_true",
        help="show the call's progress while it runs (needs tqdm)",
    )
    call.set_defaults(handler=_call)


def parse_call_arguments(words: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments from ``VALUE``/``NAME=VALUE`` words.

    Raises:
        ValueError: Both kinds were given (JSON-RPC parameters are one or the other).
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for word in words:
        keyword = _KEYWORD.match(word)
        if keyword:
            kwargs[keyword.group(1)] = _value(keyword.group(2))
        else:
            args.append(_value(word))
    if args and kwargs:
        raise ValueError("give arguments either all positional or all as name=value, not both")
    return args, kwargs


def _value(text: str) -> Any:
    """JSON when ``text`` is JSON (NaN and Infinity are not), else the text itself."""
    try:
        return json.loads(text, parse_constant=_reject)
    except ValueError:
        return text


def _reject(constant: str) -> Any:
    raise ValueError(constant)


def _call(args: argparse.Namespace, environ: dict[str, str]) -> int:
    try:
        positional, keyword = parse_call_arguments(args.arguments)
    except ValueError as exc:
        print(f"commissaire-tasks call: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from .bus import Bus

    bus = Bus(_app_for(environ)) if _overridden(environ) else Bus()
    try:
        if args.progress:
            from .ops.progress import wait_with_progress

            result = wait_with_progress(
                bus.send(args.routing_key, *positional, **keyword), timeout=args.timeout
            )
        else:
            result = bus.call(args.routing_key, *positional, timeout=args.timeout, **keyword)
    except BusError as exc:
        print(f"error {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the remote error, rebuilt: report and fail
        print(_describe_error(exc), file=sys.stderr)
        return 1
    print(json.dumps(result, default=str))
    return 0


# -- dead-letters ---------------------------------------------------------------------------


def _add_dead_letters(commands: Any) -> None:
    dead = commands.add_parser(
        "dead-letters", help="count, show and delete the entries a queue's workers set aside"
    )
    dead.add_argument(
        "queue", metavar="QUEUE", help="a service queue (its dead letters: QUEUE.dead)"
    )
    dead.add_argument(
        "--show", type=int, default=10, metavar="N", help="print up to N, oldest first (default 10)"
    )
    dead.add_argument("--purge", action="store_true", help="delete them after printing")
    dead.set_defaults(handler=_dead_letters)


def _dead_letters(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .runtime import deadletters

    with _app_for(environ).connection_for_write() as connection:
        total = deadletters.count(connection, args.queue)
        print(f"{deadletters.dead_letter_queue(args.queue)}: {total} dead letter(s)")
        for letter in deadletters.peek(connection, args.queue, max(args.show, 0)):
            shown = {
                "content_type": letter.content_type,
                "headers": letter.headers,
                "body": letter.body.decode("utf-8", "replace"),
            }
            print(json.dumps(shown, default=str))
        if args.purge:
            print(f"deleted {deadletters.purge(connection, args.queue)}")
    return 0


# -- flower ---------------------------------------------------------------------------------


def _add_flower(commands: Any) -> None:
    from .config import ENV_FLOWER_AUTH
    from .ops.flower import DEFAULT_ADDRESS, DEFAULT_PORT

    flower = commands.add_parser("flower", help="run Flower on the broker, with basic auth")
    flower.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    flower.add_argument("--address", default=DEFAULT_ADDRESS, help=f"default {DEFAULT_ADDRESS}")
    auth = flower.add_mutually_exclusive_group()
    auth.add_argument(
        "--basic-auth",
        metavar="USER:PASSWORD",
        help=f"credentials (default ${ENV_FLOWER_AUTH}, else generated and printed)",
    )
    auth.add_argument(
        "--no-auth", action="store_true", help="run Flower open to anyone who can reach it"
    )
    flower.set_defaults(handler=_flower, passes_extra=True)  # other options go to Flower


def _flower(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .ops.flower import resolve_auth, run_flower

    extra = [a for a in args.extra if a != "--"]
    auth = resolve_auth(args.basic_auth, args.no_auth, environ)
    return run_flower(auth, environ, port=args.port, address=args.address, extra=extra)


# -- bridge ---------------------------------------------------------------------------------


def _add_bridge(commands: Any) -> None:
    bridge = commands.add_parser(
        "bridge",
        help="serve clients of the original Commissaire bus (JSON-RPC on the topic exchange)",
        description="Consumes original-protocol requests on the exchange the original clients "
        "publish to ($COMMISSAIRE_BRIDGE_EXCHANGE, default 'commissaire'; bindings "
        "$COMMISSAIRE_BRIDGE_BINDINGS, default '#'), calls the services and replies on each "
        "request's reply_to queue. The services need an exchange of their own: their default is "
        "'commissaire' too, so set $COMMISSAIRE_EXCHANGE (or --bus-exchange), e.g. to "
        "commissaire-tasks.",
    )
    bridge.add_argument("--threads", type=_positive_int, default=None, help="calls at once")
    bridge.add_argument("--loglevel", "-l", default="INFO", help="log level (default INFO)")
    bridge.set_defaults(handler=_bridge)


def _bridge(args: argparse.Namespace, environ: dict[str, str]) -> int:
    import dataclasses

    from .bridge import load_bridge_settings, run_bridge

    settings = load_bridge_settings(environ)
    if args.threads:
        settings = dataclasses.replace(settings, threads=args.threads)
    return run_bridge(settings, args.loglevel)


if __name__ == "__main__":
    sys.exit(main())

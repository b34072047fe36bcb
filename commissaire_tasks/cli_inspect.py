"""``commissaire-tasks status``, ``services`` and ``unsubscribe``: what runs, and tidying up."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._cli_common import app_for as _app_for
from ._cli_common import describe_error as _describe_error
from ._cli_common import positive_float as _positive_float
from .config import ENV_RABBITMQ_API
from .errors import BusError

__all__ = ["add_inspect_commands"]


def add_inspect_commands(commands: Any) -> None:
    """Add ``status``, ``services`` and ``unsubscribe`` to the CLI's subcommands."""
    _add_status(commands)
    _add_services(commands)
    _add_unsubscribe(commands)


# -- status ---------------------------------------------------------------------------------


def _add_status(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="services, queue depths, dead letters and workers; exit 1 when something needs you",
        description="Every known service's queues with their depth, dead letters (queue Q.dead) "
        "and workers; other queues holding messages; queues served by different code; storage "
        "subscriptions whose service has no live worker. Exit 1 when any of these needs you.",
    )
    status.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help="report (and set the exit code) for these services only",
    )
    status.add_argument(
        "--no-task-events",
        dest="task_events",
        action="store_false",
        help="do not ask the workers for task events (for a health check run every few seconds, "
        "which would otherwise keep them on)",
    )
    _add_report_options(status)
    status.set_defaults(handler=_status)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--timeout``, for the commands that ask the workers."""
    from .ops.status import DEFAULT_INSPECT_TIMEOUT_S  # ops loads only when a command runs

    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_INSPECT_TIMEOUT_S,
        help=f"seconds to wait for worker replies (default {DEFAULT_INSPECT_TIMEOUT_S:g})",
    )


def _status(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .ops.status import collect_status, render_table
    from .runtime.loader import load_service_modules

    problems = []
    try:
        modules = load_service_modules()
    except Exception as exc:  # noqa: BLE001 - a broken service module is a status finding
        problems.append(f"cannot import the service modules: {type(exc).__name__}: {exc}")
        modules = []
    services = [spec for module in modules for spec in module.services]
    report = collect_status(
        _app_for(environ),
        services,
        args.timeout,
        problems,
        args.services,
        ask_for_events=args.task_events,
        rabbitmq_api=environ.get(ENV_RABBITMQ_API) or None,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render_table(report))
    return 0 if report.ok else 1


# -- services -------------------------------------------------------------------------------


def _add_services(commands: Any) -> None:
    services = commands.add_parser(
        "services",
        help="each live service, its methods and their parameters, as the workers report them",
    )
    _add_report_options(services)
    services.set_defaults(handler=_services)


def _services(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .ops.catalog import live_services, render_services
    from .ops.status import connect_or_fail
    from .runtime.introspect import collect_reports

    app = _app_for(environ)
    connect_or_fail(app, args.timeout)
    found = live_services(collect_reports(app, args.timeout))
    if args.json:
        print(json.dumps([service.to_dict() for service in found], indent=2))
    else:
        print(render_services(found))
    return 0 if found else 1


# -- unsubscribe ----------------------------------------------------------------------------


def _add_unsubscribe(commands: Any) -> None:
    unsubscribe = commands.add_parser(
        "unsubscribe",
        help="remove a service's storage subscription (a retired subscriber)",
        description="The storage service stops queueing change notifications for SERVICE. "
        "Stop SERVICE's workers first: a worker that starts subscribes again.",
    )
    unsubscribe.add_argument("service", metavar="SERVICE")
    unsubscribe.add_argument(
        "--timeout", type=_positive_float, default=None, help="seconds to wait for storage"
    )
    unsubscribe.set_defaults(handler=_unsubscribe)


def _unsubscribe(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .bus import Bus
    from .storage.subscriptions import unsubscribe

    try:
        removed = unsubscribe(args.service, Bus(_app_for(environ)), timeout=args.timeout)
    except BusError as exc:
        print(f"error {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the remote error, rebuilt: report and fail
        print(_describe_error(exc), file=sys.stderr)
        return 1
    if removed:
        print(f"Removed the storage subscription of {args.service}.")
    else:
        print(f"{args.service} had no storage subscription.")
    return 0

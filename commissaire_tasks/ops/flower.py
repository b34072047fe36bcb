"""``commissaire-tasks flower``: Flower on the configured broker, behind basic auth by default.

Flower can run tasks and shut workers down, so an open Flower is an open bus.
Credentials come from ``--basic-auth``, else ``$COMMISSAIRE_FLOWER_AUTH``, else
Flower's own ``$FLOWER_BASIC_AUTH``, else a generated password printed once.
They reach Flower through its environment (``FLOWER_BASIC_AUTH``), never its
command line, which other users of the machine can read.

Workers send task events on demand (:mod:`commissaire_tasks.runtime.events`):
this command asks for them as Flower starts, and Flower itself asks every 5 s.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from ..config import ENV_BROKER_URL, ENV_FLOWER_AUTH, load_settings
from ..errors import ConfigurationError
from ..redact import redact_url
from ..runtime.app import create_app
from ..runtime.events import ask_for_task_events
from .processes import ProcessGroup, stop_signals_hurry, stop_signals_interrupt

__all__ = ["FlowerAuth", "flower_command", "resolve_auth", "run_flower"]

#: Flower's own environment variable for the same.
FLOWER_ENV_BASIC_AUTH = "FLOWER_BASIC_AUTH"
DEFAULT_PORT = 5555
DEFAULT_ADDRESS = "127.0.0.1"
#: User name of a generated credential.
DEFAULT_USER = "admin"
#: Seconds Flower gets to stop after SIGTERM.
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FlowerAuth:
    """Basic-auth credentials for Flower (``None``: no auth), and whether we made them up."""

    credentials: str | None
    generated: bool = False


def resolve_auth(basic_auth: str | None, no_auth: bool, environ: Mapping[str, str]) -> FlowerAuth:
    """Pick the credentials as the module docstring says; check their shape."""
    if no_auth:
        if basic_auth:
            raise ConfigurationError("give either --basic-auth or --no-auth, not both")
        return FlowerAuth(None)
    given = basic_auth or environ.get(ENV_FLOWER_AUTH) or environ.get(FLOWER_ENV_BASIC_AUTH)
    if given:
        for credential in given.split(","):
            user, _, password = credential.partition(":")
            if not user or not password:
                raise ConfigurationError("basic auth must look like user:password[,user:password]")
        return FlowerAuth(given)
    return FlowerAuth(f"{DEFAULT_USER}:{secrets.token_urlsafe(16)}", generated=True)


def flower_command(port: int, address: str, extra: Sequence[str] = ()) -> list[str]:
    """``celery -A commissaire_tasks flower`` as this Python runs it."""
    return [
        sys.executable, "-m", "celery", "-A", "commissaire_tasks", "flower",
        f"--port={port}", f"--address={address}", *extra,
    ]  # fmt: skip


def flower_env(environ: Mapping[str, str], auth: FlowerAuth) -> dict[str, str]:
    env = dict(environ)
    env.pop(FLOWER_ENV_BASIC_AUTH, None)
    if auth.credentials is not None:
        env[FLOWER_ENV_BASIC_AUTH] = auth.credentials
    return env


def _ask_for_task_events(environ: Mapping[str, str]) -> None:
    """Ask the workers for task events now, in the background (a broker down never blocks)."""
    app = create_app(load_settings(environ), services=())
    threading.Thread(
        target=ask_for_task_events, args=(app,), name="ask-task-events", daemon=True
    ).start()


def run_flower(
    auth: FlowerAuth,
    environ: Mapping[str, str],
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    extra: Sequence[str] = (),
    out: TextIO | None = None,
) -> int:
    """Run Flower in the foreground; return its exit code (0 after Ctrl-C/SIGTERM)."""
    out = out or sys.stdout
    broker = redact_url(environ.get(ENV_BROKER_URL) or load_settings(environ).broker_url)
    print(f"Flower: http://{address}:{port}/ on broker {broker}", file=out, flush=True)
    if auth.credentials is None:
        print(
            f"warning: Flower runs WITHOUT authentication: anyone who can reach {address}:{port} "
            "can see calls and their arguments, run tasks and stop workers",
            file=sys.stderr,
            flush=True,
        )
    elif auth.generated:
        user, _, password = auth.credentials.partition(":")
        print(
            f"Log in as {user!r} with password {password!r} (generated; it is not shown again; "
            f"choose one with --basic-auth or ${ENV_FLOWER_AUTH})",
            file=out,
            flush=True,
        )
    _ask_for_task_events(environ)
    group = ProcessGroup()
    code = 0
    try:
        with stop_signals_interrupt():
            command = flower_command(port, address, extra)
            group.spawn("flower", command, flower_env(environ, auth))
            code = group.wait_any().returncode
    except KeyboardInterrupt:
        code = 0
    finally:
        with stop_signals_hurry() as hurry:
            group.stop(group.processes, STOP_TIMEOUT_S, hurry)
    return code

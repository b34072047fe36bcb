"""What the ``commissaire-tasks`` commands share: argument types, the app, error lines."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .config import load_settings
from .errors import RemoteProcedureCallError, jsonrpc_error

__all__ = ["app_for", "describe_error", "positive_float", "positive_int"]


def describe_error(exc: BaseException) -> str:
    """``error <code> <ExceptionType>: <message>`` for a call's error."""
    error = jsonrpc_error(exc)
    name = exc.exception_type if isinstance(exc, RemoteProcedureCallError) else type(exc).__name__
    return f"error {error['code']} {name}: {error['message']}"


def app_for(environ: Mapping[str, str]) -> Any:
    from .runtime.app import create_app

    return create_app(load_settings(environ), services=())


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value

"""The options a ContainerManagerConfig may carry, checked when the record is saved.

Kept beside the models (not in :mod:`commissaire_tasks.containers`) so that saving a
bad config fails at once, in the caller's process, instead of when the container
service first uses it.

Kubernetes (and OpenShift, the same manager) options:

=========================== ==========================================================
``server_url``              the API server, ``https://host:6443`` (required)
``token_file``              a file holding the bearer token, on the container worker's
                            machine (a service account token, say)
``certificate_path``        client certificate (PEM file); needs ``certificate_key_path``
``certificate_key_path``    its private key (PEM file); needs ``certificate_path``
``ca_bundle``               CA certificates (PEM file) that sign the server's certificate;
                            ``certificate_authority`` is the same option
``insecure_skip_tls_verify`` true turns server verification off (default false)
``timeout_s``               seconds one request may take (default 10)
=========================== ==========================================================

Secrets are never inline: a record travels in notifications and results, so the
token and the client key are named by path, and an inline ``token`` is refused.
The trivial manager takes no options (any given are ignored, as in the original).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KUBERNETES_OPTIONS", "KUBERNETES_TYPES", "option_problems"]

#: Types served by the Kubernetes manager (OpenShift speaks the same node API).
KUBERNETES_TYPES: tuple[str, ...] = ("kubernetes", "openshift")

#: Option name -> the Python type it must have.
KUBERNETES_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "server_url": str,
    "token_file": str,
    "certificate_path": str,
    "certificate_key_path": str,
    "ca_bundle": str,
    "certificate_authority": str,
    "insecure_skip_tls_verify": bool,
    "timeout_s": (int, float),
}

_INLINE_SECRETS = {
    "token": "token_file",
    "certificate_key": "certificate_key_path",
    "client_key": "certificate_key_path",
}


def option_problems(manager_type: str, options: Mapping[str, Any]) -> list[str]:
    """Every problem of ``options`` for a manager of ``manager_type`` ([] when fine)."""
    if manager_type not in KUBERNETES_TYPES:
        return []
    problems = [_problem(name, value) for name, value in options.items()]
    found = [p for p in problems if p]
    url = options.get("server_url")
    if url is None:
        found.insert(0, "options.server_url: required")
    if ("certificate_path" in options) != ("certificate_key_path" in options):
        found.append("options: certificate_path and certificate_key_path go together")
    if "certificate_path" in options and isinstance(url, str) and not url.startswith("https://"):
        found.append("options.server_url: a client certificate needs an https:// server_url")
    return found


def _problem(name: str, value: Any) -> str:
    if name in _INLINE_SECRETS:
        return (
            f"options.{name}: secrets are not kept inline (records travel in notifications); "
            f"put it in a file the container worker reads and name it in {_INLINE_SECRETS[name]}"
        )
    expected = KUBERNETES_OPTIONS.get(name)
    if expected is None:
        known = ", ".join(sorted(KUBERNETES_OPTIONS))
        return f"options.{name}: unknown option (known: {known})"
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        return f"options.{name}: must be a {_type_name(expected)}"
    if name == "server_url" and not str(value).startswith(("http://", "https://")):
        return "options.server_url: must start with https:// (or http://)"
    if name == "timeout_s" and isinstance(value, int | float) and value <= 0:
        return "options.timeout_s: must be a positive number"
    return ""


def _type_name(expected: type | tuple[type, ...]) -> str:
    return "number" if isinstance(expected, tuple) else expected.__name__

"""``commissaire-tasks serve``: the REST front under uvicorn.

::

    commissaire-tasks serve --config /etc/commissaire/commissaire.conf
    commissaire-tasks serve --port 8443 --tls-cert server.pem --tls-key server.key \\
        --client-ca clients-ca.pem --config auth.json
    commissaire-tasks serve --no-auth          # 127.0.0.1 only, and it says so

Without an authentication plugin the server refuses to start unless
``--no-auth`` is given. With ``--client-ca``, client certificates are asked
for and verified when sent; the ``httpauthclientcert`` plugin accepts only
requests that sent one (other plugins still serve clients without).
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Mapping
from typing import Any

from ..config import load_settings
from ..errors import ConfigurationError
from .server_config import LOOPBACK, ServerConfig, load_server_config

__all__ = ["add_serve_command", "build_server", "config_from_args"]


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the REST API (Commissaire's HTTP API v0) and the status page",
        description="Serves /api/v0/..., the status page at / and the API docs at /docs "
        "(needs the 'http' extra).",
    )
    serve.add_argument("--host", help="address to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--tls-cert", help="server certificate PEM (may hold the key too)")
    serve.add_argument("--tls-key", help="server private key PEM")
    serve.add_argument("--client-ca", help="CA bundle that client certificates must chain to")
    serve.add_argument(
        "--config", help="JSON config file (the original's keys: listen-port, tls-pemfile, ...)"
    )
    serve.add_argument(
        "--no-auth", action="store_true", help="serve without authentication, on 127.0.0.1 only"
    )
    serve.add_argument("--loglevel", "-l", default="info", help="log level (default info)")
    serve.set_defaults(handler=run_serve)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    config = load_server_config(args.config).replace(
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
    )
    if args.no_auth:
        config = config.replace(no_auth=True)
    return config


def run_serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    server = build_server(config_from_args(args), environ, args.loglevel)
    server.run()
    return 0


def build_server(config: ServerConfig, environ: Mapping[str, str], loglevel: str = "info") -> Any:
    """The uvicorn server for ``config``; ConfigurationError when it may not start."""
    try:
        import uvicorn

        from .app import create_app
        from .auth import AuthManager
        from .backend import Backend
        from .tls import TLSInfoProtocol
    except ImportError as exc:
        raise ConfigurationError(
            f"serve needs the http extra: pip install 'commissaire-tasks[http]' ({exc})"
        ) from exc
    from ..bus import Bus
    from ..runtime.app import create_app as create_celery_app

    host = config.host
    if config.no_auth:
        auth = AuthManager.disabled()
        if host != LOOPBACK:
            host = LOOPBACK
        print(f"authentication is off (--no-auth): serving on {LOOPBACK} only", file=sys.stderr)
    elif not config.plugins:
        raise ConfigurationError(
            "no authentication plugin is configured: list them under 'authentication-plugins' "
            "in --config FILE, or give --no-auth to serve on 127.0.0.1 without authentication"
        )
    else:
        auth = AuthManager.from_config(config.plugins, config.roles)
    if config.client_ca and not config.tls_cert:
        raise ConfigurationError("--client-ca needs --tls-cert (client certificates need TLS)")
    settings = load_settings(environ)
    settings = settings.replace(
        **{
            k: v
            for k, v in {
                "broker_url": config.bus_uri,
                "exchange": config.bus_exchange,
                "call_timeout_s": config.call_timeout_s,
            }.items()
            if v is not None
        }
    )
    bus = Bus(create_celery_app(settings, services=()))
    backend = Backend(bus, max_threads=config.max_threads or 64)
    uvicorn_config = uvicorn.Config(
        create_app(backend, auth),
        host=host,
        port=config.port,
        http=TLSInfoProtocol,
        log_level=loglevel.lower(),
        ssl_certfile=config.tls_cert,
        ssl_keyfile=config.tls_key,
        ssl_ca_certs=config.client_ca,
        ssl_cert_reqs=ssl.CERT_OPTIONAL if config.client_ca else ssl.CERT_NONE,
    )
    return uvicorn.Server(uvicorn_config)

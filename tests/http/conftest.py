"""The REST front's test setup, shared by the package (it lives as long as its tests).

* A private Redis: db 0 for the main world (a storage worker and a worker
  serving the clusterexec and container stand-ins of :mod:`.standins`), db 1
  for a world with only a storage worker (routes needing another service: 503).
* The main server: ``commissaire-tasks serve`` over TLS (a test CA), with
  client certificates asked for, and the three plugins in order: basic
  (users file of bcrypt hashes), client certificate (CN ``ops-client``) and
  bearer token (checked by :mod:`.token_endpoint`, standing in for TokenReview).
  ``alice`` has the ``creds`` role; ``bob`` has none.
* The bare server: the db 1 world, ``--no-auth``.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from commissaire_tasks.http.auth.basic import hash_password
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port

from .pki import Pair, TestCA
from .server import ROOT, ServeProcess
from .token_endpoint import REVIEWER_TOKEN, TokenReviewStandIn

#: Users of the basic plugin; alice's password has colons in it.
ALICE = ("alice", "pass:word:with:colons")
BOB = ("bob", "bob-secret")
#: Seconds the servers wait for a bus call (the ``stuck`` stand-in takes longer).
CALL_TIMEOUT_S = 8
CLIENT_CN = "ops-client"
#: Seconds each process gets to start (they start together, on a shared machine).
READY_TIMEOUT_S = 120.0


class Worlds:
    """Broker URLs of the two worlds."""

    def __init__(self, redis: RedisServer) -> None:
        base = redis.url.rsplit("/", 1)[0]
        self.main = f"{base}/0"
        self.bare = f"{base}/1"


@pytest.fixture(scope="package")
def worlds() -> Iterator[Worlds]:
    redis = RedisServer().start()
    yield Worlds(redis)
    redis.close()


@pytest.fixture(scope="package")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("pki")
    ca = TestCA(folder)
    stranger_ca = TestCA(folder, "some other CA")
    return {
        "ca": ca.path,
        "server": ca.issue("127.0.0.1", server=True),
        "client": ca.issue(CLIENT_CN),
        "wrong_cn": ca.issue("someone-else"),
        "stranger": stranger_ca.issue(CLIENT_CN),
    }


@pytest.fixture(scope="package")
def token_endpoint() -> Iterator[TokenReviewStandIn]:
    endpoint = TokenReviewStandIn().start()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="package")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http-logs")


@pytest.fixture(scope="package")
def stack(
    worlds: Worlds, logs: Path, main_server: ServeProcess, bare_server: ServeProcess
) -> Iterator[None]:
    """Every worker and both servers, started at once (start-up is most of this package's time)."""
    workers = [
        WorkerProcess(
            broker_url=worlds.main,
            queues=["storage"],
            concurrency=2,
            env={"COMMISSAIRE_SERVICES": "workers.storage"},
            log_dir=logs,
        ),
        WorkerProcess(
            broker_url=worlds.main,
            queues=["clusterexec", "container"],
            concurrency=4,
            env={"COMMISSAIRE_SERVICES": "tests.http.standins"},
            log_dir=logs,
            cwd=ROOT,
        ),
        WorkerProcess(
            broker_url=worlds.bare,
            queues=["storage"],
            env={"COMMISSAIRE_SERVICES": "workers.storage"},
            log_dir=logs,
        ),
    ]
    for worker in workers:
        worker.start(wait=False)
    for server in (main_server, bare_server):
        server.start(wait=False)
    for worker in workers:
        worker.wait_ready(READY_TIMEOUT_S)
    for server in (main_server, bare_server):
        server.wait_listening()
    yield
    stoppers = [threading.Thread(target=p.stop) for p in (*workers, main_server, bare_server)]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


def _env(broker: str) -> dict[str, str]:
    return {**os.environ, "COMMISSAIRE_BROKER_URL": broker, "COMMISSAIRE_CALL_TIMEOUT": "20"}


@pytest.fixture(scope="package")
def server_config(
    tmp_path_factory: pytest.TempPathFactory, token_endpoint: TokenReviewStandIn
) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    users = folder / "users.json"
    users.write_text(
        json.dumps({name: {"hash": hash_password(pw, rounds=4)} for name, pw in (ALICE, BOB)})
    )
    config = {
        "authentication-plugins": [
            {"name": "httpbasicauth", "filepath": str(users)},
            {"name": "httpauthclientcert", "cn": CLIENT_CN},
            {
                "name": "bearertokenauth",
                "url": token_endpoint.url,
                "reviewer_token": REVIEWER_TOKEN,
            },
        ],
        "roles": {"creds": [ALICE[0]]},
        "call-timeout": CALL_TIMEOUT_S,
    }
    path = folder / "commissaire.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="package")
def main_server(
    worlds: Worlds, pki: dict[str, Any], server_config: Path, logs: Path
) -> ServeProcess:
    """The main server (not started: :func:`stack` starts it with the workers)."""
    port = free_port()
    server_pair: Pair = pki["server"]
    process = ServeProcess(
        ["--bus-uri", worlds.main],
        [
            "--host", "127.0.0.1", "--port", str(port),
            "--tls-cert", str(server_pair.cert), "--tls-key", str(server_pair.key),
            "--client-ca", str(pki["ca"]), "--config", str(server_config),
        ],
        port,
        logs / f"serve-{uuid.uuid4().hex[:6]}.log",
        _env(worlds.main),
    )  # fmt: skip
    return process


@pytest.fixture(scope="package")
def bare_server(
    worlds: Worlds, logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> ServeProcess:
    """The bare world's server, ``--no-auth`` (started by :func:`stack`)."""
    port = free_port()
    config = tmp_path_factory.mktemp("bare") / "bare.json"
    config.write_text(json.dumps({"call-timeout": CALL_TIMEOUT_S}))
    process = ServeProcess(
        [],
        ["--host", "0.0.0.0", "--port", str(port), "--no-auth", "--config", str(config)],
        port,
        logs / "serve-bare.log",
        _env(worlds.bare),
    )
    return process


@pytest.fixture(scope="package")
def base_url(stack: None, main_server: ServeProcess) -> str:
    return f"https://127.0.0.1:{main_server.port}"


def client(base_url: str, pki: dict[str, Any], **options: Any) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    cert: Pair | None = options.pop("cert", None)
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    return httpx.Client(base_url=base_url, verify=context, timeout=60, **options)


@pytest.fixture
def api(base_url: str, pki: dict[str, Any]) -> Iterator[httpx.Client]:
    """A client of the main server, authenticated as bob (no roles)."""
    with client(base_url, pki, auth=BOB) as session:
        yield session


@pytest.fixture
def bare(stack: None, bare_server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{bare_server.port}", timeout=60) as session:
        yield session


@pytest.fixture
def name() -> str:
    """A unique record name (clusters, networks, managers) or host address."""
    return f"t{uuid.uuid4().hex[:10]}"

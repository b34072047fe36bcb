"""The Kubernetes manager against a local fake of the API server's node endpoints.

The manager is the real one (official client, real HTTP and TLS); only the server
is a stand-in (:mod:`tests.containers.apiserver`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commissaire_tasks.containers.kubernetes import KubernetesManager
from commissaire_tasks.errors import ConfigurationError, ContainerManagerError
from commissaire_tasks.models import ContainerManagerConfig

from .apiserver import PKI, FakeNodeAPIServer

TOKEN = "test-bearer-token-7f3a"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def http_server() -> Iterator[FakeNodeAPIServer]:
    with FakeNodeAPIServer() as server:
        yield server


@pytest.fixture
def https_server(pki: PKI) -> Iterator[FakeNodeAPIServer]:
    with FakeNodeAPIServer(tls=pki) as server:
        yield server


def manager(**options: Any) -> KubernetesManager:
    """A manager from options checked as a saved ContainerManagerConfig is."""
    config = ContainerManagerConfig.new(name="k8s", type="kubernetes", options=options)
    config._prepare()
    return KubernetesManager(config.name, config.options)


def test_nodes_are_registered_read_and_removed_with_the_bearer_token(
    http_server: FakeNodeAPIServer, token_file: Path
) -> None:
    k8s = manager(server_url=http_server.url, token_file=str(token_file))

    k8s.register_node("10.3.0.1")
    k8s.register_node("10.3.0.1")  # 409 AlreadyExists: registered, no error
    k8s.register_node("10.3.0.2")

    assert k8s.node_registered("10.3.0.1") is True
    assert k8s.node_registered("10.3.0.9") is False
    node = k8s.get_node_status("10.3.0.1")
    assert node["metadata"]["name"] == "10.3.0.1" and node["kind"] == "Node"
    assert k8s.get_node_status("10.3.0.1", raw=True)["conditions"][0]["type"] == "Ready"
    k8s.remove_node("10.3.0.1")
    assert set(http_server.store.nodes) == {"10.3.0.2"}
    k8s.remove_all_nodes()
    assert http_server.store.nodes == {}
    assert [(s.method, s.path.split("?")[0]) for s in http_server.store.seen[:2]] == [
        ("POST", "/api/v1/nodes"),
        ("POST", "/api/v1/nodes"),
    ]
    assert ("DELETE", "/api/v1/nodes") in [(s.method, s.path) for s in http_server.store.seen]
    assert {s.authorization for s in http_server.store.seen} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("status", [401, 403, 500])
def test_an_error_status_is_a_container_manager_error_carrying_it(
    http_server: FakeNodeAPIServer, status: int
) -> None:
    k8s = manager(server_url=http_server.url)
    http_server.store.fail_with = status

    for call in (
        lambda: k8s.register_node("10.3.1.1"),
        lambda: k8s.node_registered("10.3.1.1"),
        lambda: k8s.remove_all_nodes(),
    ):
        with pytest.raises(ContainerManagerError) as caught:
            call()
        assert caught.value.code == -20001
        assert caught.value.data["http_status"] == status


def test_an_unknown_node_answers_404(http_server: FakeNodeAPIServer) -> None:
    k8s = manager(server_url=http_server.url)

    for call in (lambda: k8s.get_node_status("10.3.2.1"), lambda: k8s.remove_node("10.3.2.1")):
        with pytest.raises(ContainerManagerError) as caught:
            call()
        assert caught.value.data["http_status"] == 404
    assert http_server.store.seen[0].authorization is None  # no token configured, none sent


def test_no_server_is_an_error_without_a_status(tmp_path: Path) -> None:
    with FakeNodeAPIServer() as server:
        url = server.url
    k8s = manager(server_url=url, timeout_s=5)

    with pytest.raises(ContainerManagerError) as caught:
        k8s.register_node("10.3.3.1")
    assert caught.value.data["http_status"] is None


def test_tls_is_verified_against_the_ca_bundle_and_sends_the_client_certificate(
    https_server: FakeNodeAPIServer, pki: PKI
) -> None:
    k8s = manager(
        server_url=https_server.url,
        ca_bundle=str(pki.ca_cert),
        certificate_path=str(pki.client_cert),
        certificate_key_path=str(pki.client_key),
    )

    k8s.register_node("10.3.4.1")

    assert k8s.node_registered("10.3.4.1")
    assert https_server.store.seen[-1].client_subject == "commissaire"


def test_a_server_signed_by_another_ca_is_refused(
    https_server: FakeNodeAPIServer, tmp_path: Path
) -> None:
    other = PKI.create(tmp_path, name="other")
    for options in ({"ca_bundle": str(other.ca_cert)}, {}):  # a wrong CA; the system's CAs
        k8s = manager(server_url=https_server.url, **options)
        with pytest.raises(ContainerManagerError) as caught:
            k8s.register_node("10.3.5.1")
        assert caught.value.data["http_status"] is None
        assert "SSL" in caught.value.message or "certificate" in caught.value.message
    assert https_server.store.nodes == {}


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_is_off_only_when_asked(https_server: FakeNodeAPIServer) -> None:
    k8s = manager(server_url=https_server.url, insecure_skip_tls_verify=True)

    k8s.register_node("10.3.6.1")

    assert set(https_server.store.nodes) == {"10.3.6.1"}


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        manager(server_url="https://127.0.0.1:1", ca_bundle=str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="token_file"):
        manager(server_url="https://127.0.0.1:1", token_file=str(tmp_path / "nope"))

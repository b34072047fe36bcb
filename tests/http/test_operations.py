"""Cluster operations over HTTP: started through clusterexec by name, read from storage."""

from __future__ import annotations

import httpx
import pytest

from .test_hosts import create_host, error_of


@pytest.mark.parametrize(
    ("operation", "done_field", "body"),
    [
        ("upgrade", "upgraded", None),
        ("restart", "restarted", None),
        ("deploy", "deployed", {"version": "7.1"}),
    ],
)
def test_an_operation_is_started_and_read(
    api: httpx.Client, name: str, operation: str, done_field: str, body: dict[str, str] | None
) -> None:
    assert create_host(api, name, status="active").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={"hostset": [name]}).status_code == 201
    path = f"/api/v0/cluster/{name}/{operation}"
    assert api.get(path).status_code == 404  # none yet
    started = api.put(path, json=body) if body else api.put(path)
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "in_process" and started.json()["name"] == name
    assert started.json()[done_field] == [name]
    read = api.get(path)
    assert read.status_code == 200
    assert read.json() == started.json()
    if body:
        assert read.json()["version"] == body["version"]


def test_starting_an_operation_on_a_missing_cluster_is_a_404(api: httpx.Client) -> None:
    assert api.put("/api/v0/cluster/no-such-cluster/upgrade").status_code == 404
    assert (
        api.put("/api/v0/cluster/no-such-cluster/deploy", json={"version": "1"}).status_code == 404
    )


def test_a_deploy_needs_a_version(api: httpx.Client, name: str) -> None:
    assert api.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    for body in ({"version": ""}, {}, None):
        refused = api.put(f"/api/v0/cluster/{name}/deploy", json=body)
        assert refused.status_code == 400, body
        assert error_of(refused)["code"] == "bad_request"


def test_operations_without_a_clusterexec_worker_are_a_503(bare: httpx.Client, name: str) -> None:
    assert bare.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    unavailable = bare.put(f"/api/v0/cluster/{name}/upgrade")
    assert unavailable.status_code == 503
    assert "clusterexec.upgrade" in error_of(unavailable)["message"]

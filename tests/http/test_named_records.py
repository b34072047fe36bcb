"""Networks and container managers over HTTP: the same pattern for both."""

from __future__ import annotations

import httpx
import pytest

from .test_hosts import error_of

KINDS = [
    ("networks", "network", "flannel_etcd", "flannel_server"),
    ("containermanagers", "containermanager", "openshift", "trivial"),
]
#: A body each type accepts (a Kubernetes/OpenShift manager needs its API server).
OPTIONS = {"openshift": {"server_url": "https://api.test:6443"}}


@pytest.mark.parametrize(("plural", "singular", "default", "other"), KINDS)
def test_a_record_is_created_read_listed_and_deleted(
    api: httpx.Client, name: str, plural: str, singular: str, default: str, other: str
) -> None:
    path = f"/api/v0/{singular}/{name}/"
    options = OPTIONS.get(default, {})
    created = api.put(path, json={"options": options} if options else {})
    assert created.status_code == 201, created.text
    assert created.json() == {"name": name, "type": default, "options": options}
    identical = {"type": default, "options": options}
    assert api.put(path.rstrip("/"), json=identical).status_code == 201
    differs = api.put(path, json={"type": other})
    assert differs.status_code == 409
    assert error_of(differs)["code"] == "conflict"
    assert api.get(path).json()["type"] == default
    assert name in api.get(f"/api/v0/{plural}/").json()
    assert api.delete(path).json() == []
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404


@pytest.mark.parametrize(("plural", "singular", "default", "other"), KINDS)
def test_an_unknown_type_is_a_400(
    api: httpx.Client, name: str, plural: str, singular: str, default: str, other: str
) -> None:
    refused = api.put(f"/api/v0/{singular}/{name}/", json={"type": "carrier-pigeon"})
    assert refused.status_code == 400
    assert "must be one of" in str(error_of(refused))
    assert api.get(f"/api/v0/{singular}/{name}/").status_code == 404


def test_a_cluster_uses_a_known_network(api: httpx.Client, name: str) -> None:
    assert api.put(f"/api/v0/network/{name}/", json={"type": "flannel_server"}).status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={"network": name}).status_code == 201
    assert api.get(f"/api/v0/cluster/{name}/").json()["network"] == name

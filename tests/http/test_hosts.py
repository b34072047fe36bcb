"""Hosts over HTTP: every route, its errors, and the services it reaches by name."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import ALICE, client

KEY = "c2VjcmV0LWtleS1ieXRlcw=="  # base64 of a private key file, as the original took


def create_host(api: httpx.Client, address: str, **body: Any) -> httpx.Response:
    return api.put(f"/api/v0/host/{address}/", json={"ssh_priv_key": KEY, **body})


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"]  # type: ignore[no-any-return]


def test_a_created_host_is_listed_read_and_deleted(api: httpx.Client, name: str) -> None:
    created = create_host(api, name, os="fedora", cpus=2)
    assert created.status_code == 201, created.text
    assert created.json()["address"] == name and created.json()["cpus"] == 2
    assert "ssh_priv_key" not in created.json()

    assert api.get(f"/api/v0/host/{name}").json()["os"] == "fedora"  # slash optional
    assert name in [h["address"] for h in api.get("/api/v0/hosts").json()]
    assert api.get("/api/v0/hosts/").status_code == 200

    assert api.delete(f"/api/v0/host/{name}/").json() == []
    missing = api.get(f"/api/v0/host/{name}/")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    assert api.delete(f"/api/v0/host/{name}/").status_code == 404


def test_the_address_may_come_in_the_body(api: httpx.Client, name: str) -> None:
    created = api.put("/api/v0/host/", json={"address": name, "ssh_priv_key": KEY})
    assert created.status_code == 201, created.text
    assert api.get(f"/api/v0/host/{name}/").status_code == 200
    assert api.put("/api/v0/host", json={"ssh_priv_key": KEY}).status_code == 400
    differs = api.put(f"/api/v0/host/{name}/", json={"address": name + "x"})
    assert differs.status_code == 400


def test_creating_a_known_host_is_identical_or_refused(api: httpx.Client, name: str) -> None:
    assert create_host(api, name).status_code == 201
    assert create_host(api, name).status_code == 201  # same key: the stored host
    other_key = api.put(f"/api/v0/host/{name}/", json={"ssh_priv_key": "b3RoZXI="})
    assert other_key.status_code == 409
    assert "another key" in error_of(other_key)["message"]


def test_a_host_joining_a_missing_cluster_is_a_conflict(api: httpx.Client, name: str) -> None:
    refused = create_host(api, name, cluster="no-such-cluster")
    assert refused.status_code == 409
    assert api.get(f"/api/v0/host/{name}/").status_code == 404  # nothing was saved


def test_a_host_created_in_a_cluster_joins_it(api: httpx.Client, name: str) -> None:
    assert api.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    assert create_host(api, name, cluster=name).status_code == 201
    assert api.get(f"/api/v0/cluster/{name}/hosts/").json() == [name]
    # known host, not in the named cluster: refused
    assert api.put(f"/api/v0/cluster/{name}-2/", json={}).status_code == 201
    assert create_host(api, name, cluster=f"{name}-2").status_code == 409
    # deleting the host takes it out of its cluster
    assert api.delete(f"/api/v0/host/{name}/").status_code == 200
    assert api.get(f"/api/v0/cluster/{name}/hosts/").json() == []


def test_invalid_host_data_is_a_400_naming_the_field(api: httpx.Client, name: str) -> None:
    bad_status = create_host(api, name, status="sleeping")
    assert bad_status.status_code == 400
    assert "status" in str(error_of(bad_status))
    bad_type = create_host(api, name, cpus="many")
    assert bad_type.status_code == 400
    assert error_of(bad_type)["details"][0]["loc"][-1] == "cpus"
    assert api.get(f"/api/v0/host/{name}/").status_code == 404
    assert api.get("/api/v0/host/bad%20address/").status_code == 400
    not_json = api.put(
        f"/api/v0/host/{name}/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400


def test_credentials_need_the_creds_role(
    api: httpx.Client, base_url: str, pki: dict[str, Any], name: str
) -> None:
    assert create_host(api, name, remote_user="admin").status_code == 201
    forbidden = api.get(f"/api/v0/host/{name}/creds")
    assert forbidden.status_code == 403
    assert error_of(forbidden)["code"] == "forbidden"
    assert KEY not in forbidden.text
    with client(base_url, pki, auth=ALICE) as alice:
        creds = alice.get(f"/api/v0/host/{name}/creds")
        assert creds.status_code == 200, creds.text
        assert creds.json() == {"address": name, "ssh_priv_key": KEY, "remote_user": "admin"}
        assert alice.get("/api/v0/host/nobody-here/creds").status_code == 404


def test_host_status_carries_the_managers_node_status(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="active").status_code == 201
    unmanaged = api.get(f"/api/v0/host/{name}/status/")
    assert unmanaged.json() == {
        "type": "host_only",
        "host": {"last_check": "", "status": "active"},
        "container_manager": {},
    }
    assert (
        api.put(f"/api/v0/cluster/{name}/", json={"container_manager": "kube"}).status_code == 201
    )
    assert api.put(f"/api/v0/cluster/{name}/hosts/{name}/").status_code == 200
    managed = api.get(f"/api/v0/host/{name}/status")
    assert managed.status_code == 200
    # the node status itself, not a JSON-RPC envelope
    assert managed.json()["container_manager"] == {"node": name, "manager": "kube", "ready": True}
    assert api.get("/api/v0/host/nobody-here/status/").status_code == 404


def test_a_failing_manager_leaves_the_status_empty(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="active").status_code == 201
    assert (
        api.put(f"/api/v0/cluster/{name}/", json={"container_manager": "broken"}).status_code == 201
    )
    assert api.put(f"/api/v0/cluster/{name}/hosts/{name}/").status_code == 200
    status = api.get(f"/api/v0/host/{name}/status/")
    assert status.status_code == 200
    assert status.json()["container_manager"] == {}


def test_a_call_that_times_out_is_a_504(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="active").status_code == 201
    assert (
        api.put(f"/api/v0/cluster/{name}/", json={"container_manager": "stuck"}).status_code == 201
    )
    assert api.put(f"/api/v0/cluster/{name}/hosts/{name}/").status_code == 200
    timed_out = api.get(f"/api/v0/host/{name}/status/")
    assert timed_out.status_code == 504
    assert error_of(timed_out)["code"] == "service_timeout"
    assert "container.get_node_status" in error_of(timed_out)["message"]


def test_a_service_with_no_worker_is_a_503(bare: httpx.Client, name: str) -> None:
    """The bare world runs storage only: no container service answers there."""
    assert bare.put(f"/api/v0/host/{name}/", json={"status": "active"}).status_code == 201
    assert (
        bare.put(f"/api/v0/cluster/{name}/", json={"container_manager": "kube"}).status_code == 201
    )
    assert bare.put(f"/api/v0/cluster/{name}/hosts/{name}/").status_code == 200
    unavailable = bare.get(f"/api/v0/host/{name}/status/")
    assert unavailable.status_code == 503
    error = error_of(unavailable)
    assert (
        error["code"] == "service_unavailable" and "container.get_node_status" in error["message"]
    )

"""Clusters and membership over HTTP."""

from __future__ import annotations

import httpx

from .test_hosts import create_host, error_of


def test_a_cluster_is_created_read_listed_and_deleted(api: httpx.Client, name: str) -> None:
    created = api.put(f"/api/v0/cluster/{name}/", json={"network": "nowhere"})
    assert created.status_code == 201, created.text
    assert created.json()["network"] == "default"  # an unknown network is 'default', as before
    read = api.get(f"/api/v0/cluster/{name}")
    assert read.status_code == 200
    assert read.json() == {
        "name": name,
        "status": "ok",
        "network": "default",
        "container_manager": "",
        "hostset": [],
        "hosts": {"total": 0, "available": 0, "unavailable": 0},
    }
    assert name in api.get("/api/v0/clusters/").json()
    assert api.delete(f"/api/v0/cluster/{name}/").json() == []
    assert api.get(f"/api/v0/cluster/{name}/").status_code == 404
    assert api.delete(f"/api/v0/cluster/{name}/").status_code == 404


def test_a_missing_cluster_is_a_404_not_a_500(api: httpx.Client) -> None:
    for path in ("", "hosts/", "hosts/some-host/", "upgrade", "restart", "deploy"):
        missing = api.get(f"/api/v0/cluster/no-such-cluster/{path}")
        assert missing.status_code == 404, (path, missing.text)
        assert error_of(missing)["code"] == "not_found"


def test_a_cluster_put_keeps_its_hosts_unless_given(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="active").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/hosts/{name}/").status_code == 200
    updated = api.put(f"/api/v0/cluster/{name}/", json={"container_manager": "kube"})
    assert updated.status_code == 201
    cluster = api.get(f"/api/v0/cluster/{name}/").json()
    assert cluster["hostset"] == [name] and cluster["container_manager"] == "kube"
    assert api.put(f"/api/v0/cluster/{name}/", json={"hostset": []}).status_code == 201
    assert api.get(f"/api/v0/cluster/{name}/hosts/").json() == []


def test_cluster_status_follows_its_hosts(api: httpx.Client, name: str) -> None:
    up, down = f"{name}-up", f"{name}-down"
    assert create_host(api, up, status="active").status_code == 201
    assert create_host(api, down, status="disassociated").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={"hostset": [down]}).status_code == 201
    assert api.get(f"/api/v0/cluster/{name}/").json()["status"] == "failed"
    assert api.put(f"/api/v0/cluster/{name}/hosts/{up}/").status_code == 200
    cluster = api.get(f"/api/v0/cluster/{name}/").json()
    assert cluster["status"] == "degraded"
    assert cluster["hosts"] == {"total": 2, "available": 1, "unavailable": 1}


def test_membership_is_replaced_only_from_the_current_list(api: httpx.Client, name: str) -> None:
    first, second = f"{name}-1", f"{name}-2"
    for address in (first, second):
        assert create_host(api, address, status="active").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    path = f"/api/v0/cluster/{name}/hosts/"
    replaced = api.put(path, json={"old": [], "new": [first, second]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["hostset"] == [first, second]
    stale = api.put(path, json={"old": [first], "new": []})
    assert stale.status_code == 409
    assert error_of(stale)["details"] == {"members": [first, second]}
    assert api.put(path, json={"old": [second, first], "new": [second]}).status_code == 200
    assert api.get(path).json() == [second]
    assert api.put(path, json={"new": []}).status_code == 400


def test_a_host_not_ready_may_not_join(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="bootstrapping").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    one = api.put(f"/api/v0/cluster/{name}/hosts/{name}/")
    assert one.status_code == 405
    assert error_of(one)["code"] == "host_not_ready"
    many = api.put(f"/api/v0/cluster/{name}/hosts/", json={"old": [], "new": [name]})
    assert many.status_code == 405
    assert error_of(many)["details"] == {
        "not_ready": [{"address": name, "status": "bootstrapping"}]
    }
    unknown = api.put(f"/api/v0/cluster/{name}/hosts/nobody-here/")
    assert unknown.status_code == 404


def test_one_member_is_added_tested_and_removed(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="disassociated").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
    member = f"/api/v0/cluster/{name}/hosts/{name}/"
    assert api.get(member).status_code == 404
    assert api.put(member).json() == [name]
    assert api.put(member.rstrip("/")).json() == [name]  # idempotent, slash optional
    assert api.get(member).json() == [name]
    assert api.delete(member).json() == []
    assert api.delete(member).json() == []
    assert api.get(member).status_code == 404
    assert api.put(f"/api/v0/cluster/no-such-cluster/hosts/{name}/").status_code == 404


def test_a_host_in_another_cluster_is_refused(api: httpx.Client, name: str) -> None:
    assert create_host(api, name, status="active").status_code == 201
    assert api.put(f"/api/v0/cluster/{name}-a/", json={}).status_code == 201
    assert api.put(f"/api/v0/cluster/{name}-b/", json={}).status_code == 201
    assert api.put(f"/api/v0/cluster/{name}-a/hosts/{name}/").status_code == 200
    assert create_host(api, f"{name}-new", cluster=f"{name}-b").status_code == 201
    refused = create_host(api, name, cluster=f"{name}-b")
    assert refused.status_code == 409
    one = api.put(f"/api/v0/cluster/{name}-b/hosts/{name}/")
    assert one.status_code == 409
    assert error_of(one)["details"] == {"cluster": f"{name}-a", "hosts": [name]}
    path = f"/api/v0/cluster/{name}-b/hosts/"
    replaced = api.put(path, json={"old": [f"{name}-new"], "new": [f"{name}-new", name]})
    assert replaced.status_code == 409
    assert api.get(path).json() == [f"{name}-new"]

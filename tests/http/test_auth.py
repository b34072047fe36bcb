"""Authentication plugins in order (basic, client certificate, bearer token), TLS, start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from commissaire_tasks.cli import main

from .conftest import ALICE, BOB, client
from .server import ServeProcess
from .test_hosts import error_of
from .token_endpoint import TokenReviewStandIn


def test_basic_auth_accepts_a_password_with_colons(base_url: str, pki: dict[str, Any]) -> None:
    with client(base_url, pki, auth=ALICE) as alice:
        assert alice.get("/api/v0/clusters/").status_code == 200


def test_without_valid_credentials_the_answer_is_401(base_url: str, pki: dict[str, Any]) -> None:
    with client(base_url, pki) as anonymous:
        refused = anonymous.get("/api/v0/clusters/")
        assert refused.status_code == 401
        assert error_of(refused)["code"] == "unauthorized"
        assert 'Basic realm="commissaire"' in refused.headers.get_list("www-authenticate")
        # authentication comes before routing, as in the original
        assert anonymous.get("/no/such/path").status_code == 401
        for path in ("/", "/docs", "/openapi.json"):
            assert anonymous.get(path).status_code == 401
    with client(base_url, pki, auth=(BOB[0], "wrong")) as wrong:
        assert wrong.get("/api/v0/clusters/").status_code == 401
    with client(base_url, pki, auth=(ALICE[0], ALICE[1].split(":")[0])) as cut:
        assert cut.get("/api/v0/clusters/").status_code == 401


def test_unknown_paths_and_methods_answer_json(api: httpx.Client) -> None:
    missing = api.get("/api/v0/nothing-here")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong_method = api.post("/api/v0/clusters/")
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)["code"] == "method_not_allowed"


def test_a_client_certificate_with_the_configured_cn_is_accepted(
    base_url: str, pki: dict[str, Any], name: str
) -> None:
    with client(base_url, pki, cert=pki["client"]) as ops:
        assert ops.get("/api/v0/clusters/").status_code == 200
        assert ops.put(f"/api/v0/cluster/{name}/", json={}).status_code == 201
        assert ops.get("/api/v0/host/anything/creds").status_code == 403  # no creds role
    with client(base_url, pki, cert=pki["wrong_cn"]) as other:
        assert other.get("/api/v0/clusters/").status_code == 401


def test_a_certificate_from_another_ca_fails_the_handshake(
    base_url: str, pki: dict[str, Any]
) -> None:
    with client(base_url, pki, cert=pki["stranger"]) as stranger, pytest.raises(httpx.HTTPError):
        stranger.get("/api/v0/clusters/")


def test_the_server_certificate_is_checked_by_clients(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as default_trust, pytest.raises(httpx.ConnectError):
        default_trust.get("/api/v0/clusters/", auth=BOB)


def test_a_bearer_token_is_checked_by_the_token_endpoint(
    base_url: str, pki: dict[str, Any], token_endpoint: TokenReviewStandIn
) -> None:
    before = token_endpoint.reviews
    with client(base_url, pki, headers={"Authorization": "Bearer token-of-carol"}) as carol:
        assert carol.get("/api/v0/clusters/").status_code == 200
        assert carol.get("/api/v0/networks/").status_code == 200
    assert token_endpoint.reviews == before + 1  # the answer is remembered
    with client(base_url, pki, headers={"Authorization": "Bearer forged"}) as forged:
        refused = forged.get("/api/v0/clusters/")
        assert refused.status_code == 401
        assert "Bearer" in refused.headers.get_list("www-authenticate")


def test_the_docs_describe_every_route(api: httpx.Client) -> None:
    assert "swagger" in api.get("/docs").text.lower()
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/api/v0/host/{address}/"]) == {"get", "put", "delete"}
    assert set(paths["/api/v0/cluster/{name}/hosts/{host}/"]) == {"get", "put", "delete"}
    assert "MembershipBody" in schema["components"]["schemas"]
    assert "ClusterUpgrade" in schema["components"]["schemas"]
    assert len(paths) == 16


def test_serve_refuses_to_start_without_an_auth_plugin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "empty.json"
    config.write_text(json.dumps({"listen-port": 1}))
    assert main(["serve", "--config", str(config)]) == 1
    assert "no authentication plugin is configured" in capsys.readouterr().err
    config.write_text(json.dumps({"authentication-plugins": [{"name": "nonesuch"}]}))
    assert main(["serve", "--config", str(config)]) == 1
    assert "unknown authentication plugin 'nonesuch'" in capsys.readouterr().err


def test_no_auth_serves_on_loopback_only_and_says_so(
    bare: httpx.Client, bare_server: ServeProcess
) -> None:
    assert bare.get("/api/v0/clusters/").status_code == 200
    log = bare_server.log()
    assert "authentication is off (--no-auth): serving on 127.0.0.1 only" in log
    assert f"http://127.0.0.1:{bare_server.port}" in log
    assert bare.get("/api/v0/host/anything/creds").status_code == 403  # anonymous: no roles

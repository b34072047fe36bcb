"""The status page: clusters, hosts and running operations, rendered by headless Chromium."""

from __future__ import annotations

import re

import httpx
import pytest

from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.models import ClusterRestart
from commissaire_tasks.runtime.app import create_app
from commissaire_tasks.storage.client import StorageClient

from . import chromium
from .conftest import Worlds
from .server import ServeProcess


@pytest.fixture
def shown(bare: httpx.Client, worlds: Worlds, name: str) -> dict[str, str]:
    """A degraded cluster of two hosts, one restart in process (one host of two done)."""
    up, down = f"{name}-up.example", f"{name}-down.example"
    assert bare.put(f"/api/v0/host/{up}/", json={"status": "active"}).status_code == 201
    assert bare.put(f"/api/v0/host/{down}/", json={"status": "failed"}).status_code == 201
    assert bare.put(f"/api/v0/cluster/{name}/", json={"hostset": [up, down]}).status_code == 201
    # The bare world has no clusterexec: its record is written as that service would.
    storage = StorageClient(Bus(create_app(load_settings().replace(broker_url=worlds.bare))))
    storage.save(
        ClusterRestart.new(
            name=name, status="in_process", restarted=[up], in_process=[down],
            started_at="2026-12-01T10:00:00.000000",
        )
    )  # fmt: skip
    return {"cluster": name, "up": up, "down": down}


def _row(html: str, table: str, first_cell: str) -> str:
    section = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    rows = [r for r in section.split("<tr>") if f"<td>{first_cell}</td>" in r]
    assert rows, f"{first_cell} is not in the {table} table"
    return re.sub(r"\s+", " ", rows[0])


def test_the_status_page_shows_clusters_hosts_and_operations(
    bare: httpx.Client, shown: dict[str, str]
) -> None:
    page = bare.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<meta http-equiv="refresh" content="5">' in html
    cluster = _row(html, "clusters", shown["cluster"])
    assert "degraded" in cluster and "<td>2</td><td>1</td><td>1</td>" in cluster
    assert "1/2 (50%)" in _row(html, "operations", shown["cluster"])
    assert "active" in _row(html, "hosts", shown["up"])
    assert "never" in _row(html, "hosts", shown["down"])


@pytest.mark.skipif(not chromium.available(), reason="chromium is not installed (apt: chromium)")
def test_headless_chromium_renders_the_status_page(
    bare_server: ServeProcess, shown: dict[str, str]
) -> None:
    dom = chromium.dump_dom(f"http://127.0.0.1:{bare_server.port}/")
    assert "<h1>Commissaire status</h1>" in dom, dom[:500]
    cluster = _row(dom, "clusters", shown["cluster"])
    assert '<span class="badge degraded">degraded</span>' in cluster
    operation = _row(dom, "operations", shown["cluster"])
    assert '<progress max="2" value="1"></progress>' in operation and "restart" in operation
    assert "failed" in _row(dom, "hosts", shown["down"])

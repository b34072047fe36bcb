"""The status page at ``/``: clusters, hosts and running operations, refreshed every few seconds.

Rendered on the server from the same storage reads as the API (no script, no
build step); the page reloads itself every :data:`REFRESH_S` seconds. A storage
outage shows as a message on the page (status 503), not as a broken page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..errors import CommissaireTasksError
from ..models import Clusters, Hosts
from .backend import Backend
from .clusters import cluster_status
from .errors import as_api_error
from .operations import OPERATIONS

__all__ = ["REFRESH_S", "router", "snapshot"]

router = APIRouter()

#: Seconds between the page's reloads.
REFRESH_S = 5
#: Operation name -> the record field listing the hosts it is done with.
_DONE_FIELD = {"upgrade": "upgraded", "restart": "restarted", "deploy": "deployed"}


def snapshot(backend: Backend) -> dict[str, Any]:
    """What the page shows: clusters, hosts and the operations in process."""
    clusters = backend.storage.list(Clusters).clusters
    hosts = backend.storage.list(Hosts).hosts
    running = []
    for cluster in clusters:
        for operation, model in OPERATIONS.items():
            record = backend.find(model.new(name=cluster.name))
            if record is None or getattr(record, "status", "") != "in_process":
                continue
            done = len(getattr(record, _DONE_FIELD[operation]))
            total = max(cluster.hosts.get("total", 0), done + len(record.in_process), 1)  # type: ignore[attr-defined]
            running.append(
                {
                    "cluster": cluster.name,
                    "operation": operation,
                    "done": done,
                    "total": total,
                    "started_at": getattr(record, "started_at", ""),
                }
            )
    return {
        "clusters": [
            {"name": c.name, "status": cluster_status(c.hosts), **c.hosts} for c in clusters
        ],
        "hosts": [
            {"address": h.address, "status": h.status, "last_check": h.last_check} for h in hosts
        ],
        "operations": running,
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> HTMLResponse:
    backend: Backend = request.app.state.backend
    try:
        data = await backend.run(snapshot)
    except CommissaireTasksError as exc:
        error = as_api_error(exc)
        if error is None:
            raise
        return HTMLResponse(render(None, error.message), status_code=error.status)
    return HTMLResponse(render(data))


def render(data: dict[str, Any] | None, problem: str = "") -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if data is None:
        body = f'<p class="problem" id="problem">Storage cannot be read: {escape(problem)}</p>'
    else:
        body = _clusters(data["clusters"]) + _operations(data["operations"]) + _hosts(data["hosts"])
    return _PAGE.format(refresh=REFRESH_S, now=now, body=body)


def _table(table_id: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty" id="{table_id}-empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>'


def _badge(status: str) -> str:
    label = status or "unknown"
    return f'<span class="badge {escape(label)}">{escape(label)}</span>'


def _clusters(clusters: list[dict[str, Any]]) -> str:
    rows = [
        [
            escape(c["name"]),
            _badge(c["status"]),
            str(c.get("total", 0)),
            str(c.get("available", 0)),
            str(c.get("unavailable", 0)),
        ]
        for c in clusters
    ]
    headers = ["Cluster", "Status", "Hosts", "Available", "Unavailable"]
    return "<h2>Clusters</h2>" + _table("clusters", headers, rows, "No clusters yet.")


def _operations(operations: list[dict[str, Any]]) -> str:
    rows = []
    for op in operations:
        percent = round(100 * op["done"] / op["total"])
        bar = (
            f'<progress max="{op["total"]}" value="{op["done"]}"></progress> '
            f"{op['done']}/{op['total']} ({percent}%)"
        )
        rows.append([escape(op["cluster"]), escape(op["operation"]), bar, escape(op["started_at"])])
    headers = ["Cluster", "Operation", "Progress", "Started"]
    return "<h2>Running operations</h2>" + _table(
        "operations", headers, rows, "No operation is running."
    )


def _hosts(hosts: list[dict[str, Any]]) -> str:
    rows = [
        [escape(h["address"]), _badge(h["status"]), escape(h["last_check"] or "never")]
        for h in hosts
    ]
    headers = ["Host", "Status", "Last check"]
    return "<h2>Hosts</h2>" + _table("hosts", headers, rows, "No hosts yet.")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<title>Commissaire status</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; min-width: 40em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35em .8em; text-align: left; }}
th {{ background: #f4f4f4; }}
.badge {{ padding: .1em .5em; border-radius: .6em; background: #ccc; font-size: .9em; }}
.ok, .active {{ background: #b7e4c7; }}
.degraded, .bootstrapping, .investigating {{ background: #ffe8a1; }}
.failed, .unreachable {{ background: #f5b7b1; }} .disassociated {{ background: #d6eaf8; }}
.problem {{ color: #a00; font-weight: bold; }} footer {{ color: #777; font-size: .85em; }}
</style></head>
<body><h1>Commissaire status</h1>
{body}
<footer>Updated {now}; this page reloads every {refresh} s.
API docs: <a href="/docs">/docs</a></footer>
</body></html>
"""

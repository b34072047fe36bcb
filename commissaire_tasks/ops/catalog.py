"""``commissaire-tasks services``: each live service, its methods and their parameters.

Built from the workers' own reports (:mod:`.introspect`), so it shows what is
running, not what the local checkout defines. A service served by workers with
different code is listed once per version, each with its workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LiveService", "live_services", "render_services"]


@dataclass
class LiveService:
    """One version of one service, and where it runs."""

    name: str
    cls: str
    version: str
    methods: Mapping[str, str]
    #: queue -> hostnames consuming it with this version
    queues: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "class": self.cls,
            "version": self.version,
            "methods": dict(self.methods),
            "queues": {q: sorted(h) for q, h in self.queues.items()},
        }


def live_services(reports: Mapping[str, Mapping[str, Any]]) -> list[LiveService]:
    """Group the workers' reports by service and code version."""
    found: dict[tuple[str, str], LiveService] = {}
    for host, report in sorted(reports.items()):
        described = report.get("services") or {}
        for queue, entry in sorted((report.get("queues") or {}).items()):
            name = entry.get("service")
            about = described.get(name) if name else None
            if not about:
                continue
            key = (name, str(about.get("version")))
            service = found.setdefault(
                key,
                LiveService(
                    name, str(about.get("class")), key[1], dict(about.get("methods") or {})
                ),
            )
            service.queues.setdefault(queue, []).append(host)
    return sorted(found.values(), key=lambda s: (s.name, s.version))


def render_services(services: list[LiveService]) -> str:
    """``service (class, code version)``, its queues and workers, then one line per method."""
    if not services:
        return "no live services (no worker answered)"
    lines: list[str] = []
    for service in services:
        lines.append(f"{service.name}  ({service.cls}, code {service.version})")
        for queue, hosts in sorted(service.queues.items()):
            lines.append(f"  queue {queue}: {', '.join(sorted(hosts))}")
        for method, parameters in sorted(service.methods.items()):
            lines.append(f"  {service.name}.{method}{parameters}")
        if not service.methods:
            lines.append("  (no methods: receives notifications only)")
    return "\n".join(lines)

"""What ``up`` starts for a module of services, as plain units (no process is started)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from commissaire_tasks.ops.up import worker_commands
from commissaire_tasks.runtime.loader import load_service_modules


def test_a_module_without_an_app_is_served_from_every_queue_its_services_have(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = {"name": "my_queue", "routing_key": "queues.my_queue.*", "service": "my"}
    monkeypatch.setenv("COMMISSAIRE_QUEUES", json.dumps([extra]))
    (module,) = load_service_modules(["workers.simple"])

    (command,) = worker_commands([replace(module, has_app=False)], None, "INFO")

    queues = command.args[command.args.index("-Q") + 1].split(",")
    assert set(queues) == {"simple", "my", "my_queue"}
    assert command.env == {"COMMISSAIRE_SERVICES": "workers.simple"}

"""The text a call's arguments and result are shown as: JSON, cut at Celery's limit."""

from __future__ import annotations

import json
from typing import Any

import celery.app.trace
from celery.signals import before_task_publish

from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime.app import create_app
from commissaire_tasks.runtime.reprs import REPR_LIMIT, install, shown
from commissaire_tasks.testing import RedisServer


def test_a_value_is_shown_as_its_json() -> None:
    assert shown([1, 2]) == "[1, 2]"
    assert shown({"address": "10.0.0.1", "cpus": 2}) == '{"address": "10.0.0.1", "cpus": 2}'


def test_a_long_value_is_cut_at_the_limit_with_an_ellipsis() -> None:
    text = shown(["x" * 5000])
    assert len(text) == REPR_LIMIT and text.endswith("...")
    assert shown("abcdef", 5) == '"a...'


def test_a_value_json_cannot_encode_is_shown_by_its_repr() -> None:
    assert shown({"when": {1, 2}}) == '{"when": "{1, 2}"}'


def test_installed_celery_renders_results_with_it() -> None:
    before = celery.app.trace.saferepr
    try:
        install()
        assert celery.app.trace.saferepr({"a": 1}, 1024) == '{"a": 1}'
    finally:
        celery.app.trace.saferepr = before


def test_a_published_call_carries_its_arguments_as_json_text(redis_server: RedisServer) -> None:
    published: list[dict[str, Any]] = []

    def keep(headers: dict[str, Any] | None = None, **_: Any) -> None:
        published.append(dict(headers or {}))

    before_task_publish.connect(keep, weak=False)
    try:
        app = create_app(load_settings().replace(broker_url=redis_server.url), services=())
        record = {"address": "10.0.0.1", "cpus": 2}
        Bus(app).notify("simple.add", record, y=[1, 2])
    finally:
        before_task_publish.disconnect(keep)
    (sent,) = published
    assert json.loads(sent["argsrepr"]) == [record]
    assert json.loads(sent["kwargsrepr"]) == {"y": [1, 2]}

"""Settings from the environment, and the Celery settings they become (pure logic)."""

from __future__ import annotations

import pytest

from commissaire_tasks.app import celery_config
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError


def test_task_events_are_on_by_default_so_flower_sees_every_call() -> None:
    config = celery_config(load_settings({}))
    assert config["worker_send_task_events"] is True
    assert config["task_send_sent_event"] is True


@pytest.mark.parametrize("value", ["off", "0", "false", "No"])
def test_task_events_can_be_switched_off(value: str) -> None:
    config = celery_config(load_settings({"COMMISSAIRE_TASK_EVENTS": value}))
    assert config["worker_send_task_events"] is False
    assert config["task_send_sent_event"] is False


def test_an_unclear_task_events_value_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_TASK_EVENTS"):
        load_settings({"COMMISSAIRE_TASK_EVENTS": "maybe"})

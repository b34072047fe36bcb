"""Settings from the environment, and the Celery settings they become (pure logic)."""

from __future__ import annotations

import pytest

from commissaire_tasks.app import celery_config
from commissaire_tasks.config import Settings, load_settings
from commissaire_tasks.errors import ConfigurationError


def test_task_events_are_on_demand_by_default_so_workers_start_without_them() -> None:
    settings = load_settings({})
    config = celery_config(settings)
    assert settings.task_events == "demand" and settings.events_quiet_s == 120
    assert config["worker_send_task_events"] is False
    assert config["task_send_sent_event"] is False


@pytest.mark.parametrize("value", ["on", "1", "true", "Yes"])
def test_task_events_can_be_kept_on_always(value: str) -> None:
    config = celery_config(load_settings({"COMMISSAIRE_TASK_EVENTS": value}))
    assert config["worker_send_task_events"] is True
    assert config["task_send_sent_event"] is True


@pytest.mark.parametrize("value", ["off", "0", "false", "No"])
def test_task_events_can_be_switched_off(value: str) -> None:
    settings = load_settings({"COMMISSAIRE_TASK_EVENTS": value})
    config = celery_config(settings)
    assert settings.task_events == "off"
    assert config["worker_send_task_events"] is False
    assert config["task_send_sent_event"] is False


def test_settings_still_take_the_old_true_and_false_for_task_events() -> None:
    assert Settings(task_events=True).task_events == "on"  # type: ignore[arg-type]
    assert Settings(task_events=False).task_events == "off"  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="demand, on or off"):
        Settings(task_events="sometimes")


def test_the_quiet_period_and_the_pool_come_from_the_environment() -> None:
    settings = load_settings({"COMMISSAIRE_EVENTS_QUIET_S": "2.5", "COMMISSAIRE_POOL": "Threads"})
    assert (settings.events_quiet_s, settings.pool) == (2.5, "threads")
    assert celery_config(settings)["worker_pool"] == "threads"
    assert "worker_pool" not in celery_config(load_settings({}))
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_POOL"):
        load_settings({"COMMISSAIRE_POOL": "eventlet"})
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_EVENTS_QUIET_S"):
        load_settings({"COMMISSAIRE_EVENTS_QUIET_S": "0"})


def test_an_unclear_task_events_value_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_TASK_EVENTS"):
        load_settings({"COMMISSAIRE_TASK_EVENTS": "maybe"})

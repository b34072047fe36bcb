"""The handler table: which store handler keeps which model, decided from config alone."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from commissaire_tasks.config import ENV_SECRETS_KEY
from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.models import Cluster, Host, HostCreds
from commissaire_tasks.storage.routing import HandlerTable


@pytest.fixture(autouse=True)
def secrets_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRETS_KEY, Fernet.generate_key().decode())


def table(*definitions: dict[str, Any]) -> HandlerTable:
    return HandlerTable({"storage_handlers": list(definitions)})


def test_with_no_config_plain_models_go_to_redis_and_secret_ones_to_secrets() -> None:
    handlers = table()
    assert handlers.for_model(Host).name == "redis"
    assert handlers.for_model(HostCreds).name == "secrets"
    assert handlers.default.name == "redis"


def test_a_pattern_claims_the_models_it_matches_and_the_rest_stay_on_the_default() -> None:
    handlers = table({"type": "memory", "models": ["Cluster*"]})
    assert handlers.for_model(Cluster).name == "memory"
    assert "ClusterDeploy" in handlers.for_model(Cluster).models
    assert handlers.for_model(Host).name == "redis"


def test_a_host_whose_source_names_a_handler_is_kept_there_and_listed_from_everywhere() -> None:
    handlers = table({"type": "memory", "name": "lab", "models": []})
    assert handlers.for_model(Host.new(address="10.0.0.1", source="lab")).name == "lab"
    assert {e.name for e in handlers.for_listing(Host)} == {"lab", "redis", "secrets"}
    assert [e.name for e in handlers.for_listing(Cluster)] == ["redis"]


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ([{"models": ["Host"]}], "needs a 'type'"),
        ([{"type": "memory", "models": ["Nothing*"]}], "matches no model"),
        ([{"type": "memory", "models": ["HostCreds"]}], "secret model"),
        ([{"type": "memory", "models": ["Host"]}, {"type": "sql", "models": ["Host"]}], "two"),
        ([{"type": "memory"}, {"type": "memory"}], "two store handlers are named"),
        ([{"type": "memory", "models": "Host"}], "must be a list"),
    ],
    ids=["no type", "pattern matches nothing", "secret named", "claimed twice", "same name", "str"],
)
def test_every_config_problem_is_a_configuration_error_when_the_table_is_built(
    definitions: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        table(*definitions)


def test_a_pattern_never_sweeps_a_secret_model_into_a_plain_handler() -> None:
    handlers = table({"type": "memory", "models": ["Host*"]})
    assert "HostCreds" not in handlers.for_model(Host).models
    assert handlers.for_model(HostCreds).name == "secrets"

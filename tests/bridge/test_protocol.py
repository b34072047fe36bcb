"""The original bus protocol as pure functions: parsing bodies, building replies (no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from commissaire_tasks.bridge import protocol
from commissaire_tasks.bridge.protocol import ProtocolError
from commissaire_tasks.bridge.settings import load_bridge_settings
from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.storage.legacy import CONFIG_KEY, legacy_publisher


def parse(body: Any, routing_key: str = "simple.add", **kw: Any) -> protocol.Request:
    return protocol.parse_request(body, routing_key, **kw)


def test_list_and_object_params_are_kept_and_missing_params_are_an_empty_object() -> None:
    assert parse(b'{"jsonrpc":"2.0","id":"1","method":"add","params":[1,2]}').params == [1, 2]
    assert parse('{"id":1,"method":"add","params":{"x":1}}').params == {"x": 1}
    request = parse({"id": 2, "method": "add"})
    assert request.params == {} and request.id == 2 and request.matches_key


def test_a_request_without_id_is_a_notification() -> None:
    assert parse({"method": "add", "params": [1, 2]}).is_notification


def test_a_request_sent_as_a_json_string_is_decoded_twice_as_replies_are() -> None:
    inner = json.dumps({"id": "a", "method": "add", "params": [1, 2]})
    assert parse(json.dumps(inner).encode()).params == [1, 2]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{nope", None),
        (b"\xff\xfe", None),
        (b"[NaN]", None),
        (b"\x80\x04K\x01.", "application/x-python-serialize"),
    ],
)
def test_undecodable_bodies_are_parse_errors(body: bytes, content_type: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(body, content_type=content_type)
    assert caught.value.error.code == -32700 and caught.value.id is None


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"hello"', b"3", b'{"id": "x"}', b'{"id": "x", "method": 7}',
     b'{"id": "x", "method": "add", "params": 3}', b'{"id": {"a": 1}, "method": "add"}'],
)  # fmt: skip
def test_bodies_that_are_not_requests_are_invalid_requests(body: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(body)
    assert caught.value.error.code == -32600


def test_an_invalid_request_keeps_its_id_when_it_has_one() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse({"id": "keep-me", "params": []})
    assert caught.value.id == "keep-me"


def test_a_method_other_than_the_routing_keys_last_segment_does_not_match() -> None:
    assert not parse({"id": 1, "method": "wordy_add"}, "simple.add").matches_key
    assert parse({"id": 1, "method": "ping"}, "queues.my_queue.ping").matches_key


def test_replies_are_json_strings_in_the_shapes_original_clients_parse() -> None:
    assert json.loads(protocol.encode_reply(protocol.result_reply("1", 3))) == {
        "jsonrpc": "2.0", "id": "1", "result": 3,
    }  # fmt: skip
    error = {"code": -20000, "message": "gone", "data": {"exception": "StorageLookupError"}}
    assert json.loads(protocol.encode_reply(protocol.error_reply("2", error)))["error"] == error
    assert protocol.mismatch_reply() == {"jsonrpc": "2.0", "id": -1}


def test_bridge_settings_default_to_every_key_on_the_original_exchange() -> None:
    settings = load_bridge_settings({"COMMISSAIRE_EXCHANGE": "mine"})
    assert (settings.exchange, settings.bindings, settings.threads) == ("commissaire", ("#",), 16)
    settings = load_bridge_settings(
        {"COMMISSAIRE_BRIDGE_EXCHANGE": "old", "COMMISSAIRE_BRIDGE_BINDINGS": "a.*, b.#"}
    )
    assert (settings.exchange, settings.bindings) == ("old", ("a.*", "b.#"))
    with pytest.raises(ConfigurationError):
        load_bridge_settings({"COMMISSAIRE_EXCHANGE": "mine", "COMMISSAIRE_BRIDGE_THREADS": "0"})


def test_the_bridge_refuses_the_services_own_exchange_naming_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_EXCHANGE=commissaire-tasks"):
        load_bridge_settings({})  # both default to 'commissaire'
    with pytest.raises(ConfigurationError):
        load_bridge_settings({"COMMISSAIRE_EXCHANGE": "x", "COMMISSAIRE_BRIDGE_EXCHANGE": "x"})


class _Bus:
    class app:  # noqa: N801 - stands in for a Celery app's attributes
        class settings:  # noqa: N801
            exchange = "commissaire"


def test_legacy_notifications_are_off_unless_the_config_or_the_environment_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COMMISSAIRE_LEGACY_NOTIFICATIONS", raising=False)
    assert not legacy_publisher({}, _Bus()).enabled
    assert legacy_publisher({CONFIG_KEY: True}, _Bus()).enabled
    monkeypatch.setenv("COMMISSAIRE_LEGACY_NOTIFICATIONS", "on")
    assert legacy_publisher({}, _Bus()).enabled
    monkeypatch.setenv("COMMISSAIRE_LEGACY_NOTIFICATIONS", "maybe")
    with pytest.raises(ConfigurationError):
        legacy_publisher({}, _Bus())

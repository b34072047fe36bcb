"""Clients of the original Commissaire bus, unchanged, served through the bridge.

Each broker (the session's Redis; RabbitMQ in a vhost of its own) gets one real
prefork worker and one ``commissaire-tasks bridge`` process; the services use
an exchange of their own and the original clients publish to another, as the
bridge's start-up note recommends.
"""

from __future__ import annotations

import json
import time
import uuid

import redis

from tests.bridge.deployment import (
    Deployment,
    wait_for,
)
from tests.bridge_client import OriginalClient


def test_a_request_with_list_params_gets_its_result_as_a_double_encoded_reply(
    client: OriginalClient,
) -> None:
    reply = client.request("simple.add", [1, 2])
    assert reply["result"] == 3 and reply["jsonrpc"] == "2.0" and "error" not in reply
    assert isinstance(client.raw, str), "the original services sent the reply as a JSON string"
    assert json.loads(client.raw)["id"] == reply["id"]


def test_a_request_with_object_params_gets_its_result_and_its_own_id(
    client: OriginalClient,
) -> None:
    reply = client.request("simple.add", {"x": "a", "y": "b"})
    assert reply["result"] == "ab"
    assert client.request("my.ping")["result"] == "pong"  # no params at all: {} as the original


def test_a_qkwargs_queue_is_reached_by_its_routing_key(
    client: OriginalClient, deployment: Deployment
) -> None:
    reply = client.request(f"{deployment.qkwargs_prefix}.echo", ["hello"])
    assert reply["result"] == "hello"


def test_a_service_that_calls_another_over_the_bus_answers_through_the_bridge(
    client: OriginalClient,
) -> None:
    assert client.request("simple.wordy_add", [2, 3])["result"] == "2 plus 3 is 5"


# -- errors -------------------------------------------------------------------------------------


def test_storage_lookup_and_container_manager_errors_keep_their_codes_and_data(
    client: OriginalClient,
) -> None:
    lookup = client.request("error.lookup", {"key": "k1"})["error"]
    assert lookup["code"] == -20000
    assert lookup["data"]["key"] == "k1" and lookup["data"]["exception"] == "StorageLookupError"
    container = client.request("error.container")["error"]
    assert container["code"] == -20001 and container["data"]["manager"] == "m1"


def test_a_real_storage_miss_reaches_the_original_client_as_storage_lookup_error(
    client: OriginalClient,
) -> None:
    params = {"model_type_name": "Host", "model_json_data": {"address": f"nx-{uuid.uuid4()}"}}
    assert client.request("storage.get", params)["error"]["code"] == -20000


def test_other_failures_get_the_frameworks_codes(client: OriginalClient) -> None:
    assert client.request("my.fail")["error"]["code"] == -32603
    assert client.request("my.fail")["error"]["data"]["exception"] == "NotImplementedError"
    assert client.request("error.custom")["error"]["code"] == -32603
    assert client.request("simple.add", [1])["error"]["code"] == -32602


def test_a_method_no_service_has_gets_method_not_found_at_once(
    client: OriginalClient, deployment: Deployment
) -> None:
    started = time.monotonic()
    assert client.request("simple.nosuch", [])["error"]["code"] == -32601  # known service
    assert client.request(f"nosuch{uuid.uuid4().hex[:6]}.ping")["error"]["code"] == -32601
    assert client.request("no.such.queue")["error"]["code"] == -32601  # no route at all
    idle = deployment.qkwargs_prefix.replace("queues.myq", "queues.idle")
    assert client.request(f"{idle}.ping")["error"]["code"] == -32601  # configured, never bound
    assert time.monotonic() - started < 5.0, "answered, not left to the caller's timeout"


def test_a_body_that_is_not_json_gets_parse_error(client: OriginalClient) -> None:
    reply = client.send_raw("simple.add", b"{not json")
    assert reply["error"]["code"] == -32700 and reply["id"] is None


def test_a_body_that_is_not_a_request_gets_invalid_request(client: OriginalClient) -> None:
    assert client.send_raw("simple.add", [1, 2])["error"]["code"] == -32600
    reply = client.send_raw("simple.add", {"jsonrpc": "2.0", "id": "c1", "params": []})
    assert reply["error"]["code"] == -32600 and reply["id"] == "c1"
    reply = client.send_raw("simple.add", {"id": "c2", "method": "add", "params": 3})
    assert reply["error"]["code"] == -32600


def test_a_method_not_matching_the_routing_keys_last_segment_is_refused_as_the_original_did(
    client: OriginalClient, deployment: Deployment
) -> None:
    run = uuid.uuid4().hex
    params = {"run": run, "token": 1}
    assert client.request("ledger.tally", params, method="other") == {"jsonrpc": "2.0", "id": -1}
    assert client.request("ledger.tally", {"run": run, "token": 2})["result"] == 2
    ledger = redis.Redis.from_url(deployment.env["TEST_RECORD_URL"])
    assert ledger.smembers(f"ledger:{run}:tokens") == {b"2"}, "the refused call never ran"


def test_bad_traffic_without_reply_to_is_logged_and_dropped_and_the_bridge_keeps_serving(
    client: OriginalClient, deployment: Deployment
) -> None:
    with client.connection.clone() as connection:
        producer = connection.Producer()
        for body in (b"\xff\xfe garbage", b"[]", b'{"method": 1}'):
            producer.publish(
                body,
                exchange=client.exchange,
                routing_key="simple.add",
                content_type="application/json",
                content_encoding="binary",
                declare=[client.exchange],
            )
        producer.publish(  # a binary serialisation is refused, never unpickled
            b"\x80\x04K\x01.",
            exchange=client.exchange,
            routing_key="simple.add",
            content_type="application/x-python-serialize",
            content_encoding="binary",
        )
    assert client.request("simple.add", [20, 22])["result"] == 42
    wait_for(lambda: deployment.log().count("Refused message on 'simple.add'") >= 4, 10)
    assert deployment.bridge.poll() is None


# -- notifications ------------------------------------------------------------------------------


def test_a_notification_is_forwarded_and_gets_no_reply(
    client: OriginalClient, deployment: Deployment
) -> None:
    run = uuid.uuid4().hex
    client.notify("ledger.tally", {"run": run, "token": 7})
    ledger = redis.Redis.from_url(deployment.env["TEST_RECORD_URL"])
    wait_for(lambda: ledger.smembers(f"ledger:{run}:tokens") == {b"7"}, 15)

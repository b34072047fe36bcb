"""What an operation is made of: batches in the cluster's order, checked parameters."""

from __future__ import annotations

import pytest

from commissaire_tasks.clusters.operations import Operation, batches
from commissaire_tasks.errors import InvalidParams, jsonrpc_error


def test_batches_keep_the_hostset_order_and_the_last_one_may_be_smaller() -> None:
    assert batches(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]
    assert batches(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert batches([], 3) == []


@pytest.mark.parametrize("size", [0, -1, 1.5, "2", True])
def test_a_batch_size_that_is_not_a_positive_integer_is_invalid_params(size: object) -> None:
    with pytest.raises(InvalidParams, match="batch_size"):
        batches(["a"], size)  # type: ignore[arg-type]


def test_an_operation_travels_as_json_and_refuses_unknown_choices() -> None:
    op = Operation("deploy", "c1", "t0k3n", [["a"], ["b"]], "continue", "42.1")
    assert Operation.from_json(op.to_json()) == op
    assert op.hosts == ["a", "b"] and op.finished_field == "deployed"
    with pytest.raises(InvalidParams, match="on_failure"):
        Operation("upgrade", "c1", "t", [], "retry")
    with pytest.raises(InvalidParams, match="unknown cluster operation"):
        Operation("reboot", "c1", "t", [])
    assert jsonrpc_error(InvalidParams("x"))["code"] == -32602

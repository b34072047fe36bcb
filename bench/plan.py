"""How much to measure: the full and quick presets, and their overrides.

A plan is sized so the full run stays near ten minutes on a 2-core machine and
``--quick`` under one minute; both measure every row, only with fewer calls and
rounds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Payload sizes of the ``my.echo`` rows, in bytes.
KB = 1024
PAYLOAD_SIZES = (1 * KB, 100 * KB, 1024 * KB)


@dataclass(frozen=True)
class Plan:
    """Sizes of every measurement.

    Attributes:
        quick: True for the ``--quick`` preset (reported in the results).
        concurrency: Worker pool sizes (``-c``) the sweep runs, in order.
        reference_concurrency: The pool size the targets and the payload,
            RabbitMQ and memory rows use.
        rounds: Interleaved rounds at the reference pool size.
        sweep_rounds: Interleaved rounds at the other pool sizes.
        latency_calls: Sequential calls per system and round.
        throughput_calls: Calls sent, then collected, per system and round.
        publish_calls: Fire-and-forget calls per system and round.
        publish_rounds: Rounds of the publish-only row.
        payload_calls: Calls per payload size (bytes -> calls) per system and round.
        payload_rounds: Rounds of the payload rows.
        drain_calls: Calls queued, then drained, for the memory row.
        storage_calls: ``save`` (then ``get``) calls per store handler and round.
        storage_rounds: Rounds of the storage rows (their ratios are per-round medians).
        bridge_calls: Calls per series of the bridge row (and per client of its 8).
        warmup_calls: Untimed calls before each timed series.
        ping_calls: Raw Redis PINGs for the reference row.
        call_timeout_s: Seconds any single call may wait before the run fails.
    """

    quick: bool = False
    concurrency: tuple[int, ...] = (1, 2, 4)
    reference_concurrency: int = 2
    rounds: int = 3
    sweep_rounds: int = 2
    latency_calls: int = 100
    throughput_calls: int = 500
    publish_calls: int = 1000
    publish_rounds: int = 3
    payload_calls: dict[int, int] = field(
        default_factory=lambda: {1 * KB: 40, 100 * KB: 20, 1024 * KB: 8}
    )
    payload_rounds: int = 3
    drain_calls: int = 100_000
    storage_calls: int = 300
    storage_rounds: int = 7
    bridge_calls: int = 200
    warmup_calls: int = 10
    ping_calls: int = 2000
    call_timeout_s: float = 120.0

    def rounds_at(self, concurrency: int) -> int:
        return self.rounds if concurrency == self.reference_concurrency else self.sweep_rounds

    def replace(self, **changes: Any) -> Plan:
        """A copy with ``changes``; ``None`` values are ignored (unset CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: ``python -m bench``: about ten minutes on 2 cores, more than half of it the
#: 100,000-call drain (the framework's worker drains some 250 calls/s there).
FULL = Plan()

#: ``python -m bench --quick``: every row, in under a minute.
QUICK = Plan(
    quick=True,
    rounds=1,
    sweep_rounds=1,
    latency_calls=30,
    throughput_calls=100,
    publish_calls=200,
    publish_rounds=1,
    payload_calls={1 * KB: 8, 100 * KB: 4, 1024 * KB: 2},
    payload_rounds=1,
    drain_calls=2000,
    storage_calls=10,
    storage_rounds=1,
    bridge_calls=20,
    warmup_calls=3,
    ping_calls=200,
    call_timeout_s=60.0,
)

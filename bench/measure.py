"""Timing primitives and the statistics quoted from them.

Absolute times on a shared 2-core machine drift by tens of percent from one
minute to the next, so every comparison is made between systems measured in the
same round, and rounds rotate which system goes first. A ratio is the median of
the per-round ratios (robust to a slow round), never a quotient of two
figures taken at different times.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def time_calls(call: Callable[[], Any], count: int, warmup: int = 0) -> list[float]:
    """Run ``call`` ``warmup`` times untimed, then ``count`` times; the durations in seconds."""
    for _ in range(warmup):
        call()
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def collected_rate(
    send: Callable[[], T], collect: Callable[[T], Any], count: int
) -> tuple[float, float]:
    """Send ``count`` calls, then collect every result.

    Returns:
        (calls sent per second during the send phase, calls completed per second
        from the first send to the last result).
    """
    clock = time.perf_counter
    start = clock()
    pending = [send() for _ in range(count)]
    sent = clock()
    for result in pending:
        collect(result)
    done = clock()
    return count / (sent - start), count / (done - start)


def publish_rate(publish: Callable[[], Any], count: int) -> float:
    """Calls per second of ``publish`` (fire and forget) over ``count`` calls."""
    clock = time.perf_counter
    start = clock()
    for _ in range(count):
        publish()
    return count / (clock() - start)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, linearly interpolated."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the per-round ratios ``numerators[i] / denominators[i]``."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("paired ratios need the same, non-zero number of rounds")
    return median(n / d for n, d in zip(numerators, denominators, strict=True))


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """``items`` starting at ``round_index``: who goes first changes every round."""
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]

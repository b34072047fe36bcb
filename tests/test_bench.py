"""The bench runs end to end in quick mode and reports every row; it never judges speed.

The bench starts its own Redis and workers (the session Redis named by
``COMMISSAIRE_BROKER_URL`` must not matter), so this test also checks that
every process it started is gone afterwards, and kills any left, by pid.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.cli import main
from bench.report import TARGETS

ROWS = {
    "redis_ping",
    "publish_only",
    "round_trip",
    "throughput",
    "payload",
    "batch",
    "events_off",
    "rabbitmq",
    "storage",
    "memory",
    "bridge",
}
PAIRS = {"framework/bare_identical", "framework/bare_default"}


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def no_leftover_processes() -> Iterator[None]:
    """Fails the test if a process the bench started outlives it (and kills it)."""
    before = children()
    yield
    leftover = children() - before
    for pid in leftover:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftover, f"the bench left processes running: {sorted(leftover)}"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def assert_latency_cell(cell: dict[str, Any]) -> None:
    assert cell["unit"] == "ms"
    for figures in cell["systems"].values():
        assert is_number(figures["p50"]) and is_number(figures["p99"])
    assert set(cell["ratios"]) == PAIRS
    for ratio in cell["ratios"].values():
        assert is_number(ratio["p50"]) and is_number(ratio["p99"])


def assert_rate_cell(cell: dict[str, Any]) -> None:
    assert cell["unit"] == "calls/s"
    for figures in cell["systems"].values():
        assert is_number(figures["median"])
    assert set(cell["ratios"]) == PAIRS
    assert all(is_number(ratio) for ratio in cell["ratios"].values())


def failed_or_skipped(value: Any, path: str = "rows") -> list[str]:
    """Every place in the results that holds an ``error`` or a ``skipped`` entry."""
    if isinstance(value, dict):
        found = [f"{path}.{key}: {value[key]}" for key in ("error", "skipped") if key in value]
        for key, inner in value.items():
            found += failed_or_skipped(inner, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [hit for i, inner in enumerate(value) for hit in failed_or_skipped(inner, path)]
    return []


def assert_storage_row(row: dict[str, Any]) -> None:
    """Each store handler measured, none failed: the notes of a full run say the same."""
    assert set(row) == {"redis", "sqlite", "postgresql"}
    for handler, figures in row.items():
        assert is_number(figures["save_per_s"]) and is_number(figures["get_per_s"]), handler
    redis = row["redis"]  # its saves are also timed with the subscriber paused
    assert all(is_number(redis[k]) for k in ("save_alone_per_s", "save_alone_vs_add"))
    notify = redis["notify"]
    assert is_number(notify["p50_ms"]) and is_number(notify["p99_ms"])


def test_the_latest_full_bench_results_pass_the_same_row_checks() -> None:
    # The committed full run (docs/bench-results.json) is what the README quotes.
    results = json.loads((Path(__file__).resolve().parent.parent / "docs/bench-results.json")
                         .read_text())  # fmt: skip
    assert failed_or_skipped(results["rows"]) == []
    assert_storage_row(results["rows"]["storage"])
    assert failed_or_skipped({"rabbitmq": {"skipped": "no server"}}) == [
        "rows.rabbitmq.skipped: no server"
    ]


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_quick_bench_writes_every_row_with_numeric_ratios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leftover_processes: None
) -> None:
    # Given a quick run writing JSON and a plot
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"

    # When it runs
    code = main(
        [
            "--quick",
            "--out",
            str(out),
            "--plot",
            str(plot),
            "--log-dir",
            str(tmp_path / "logs"),
            "--quiet",
        ]
    )

    # Then it completes, prints one table with the target checks, and the JSON has every row
    assert code == 0
    table = capsys.readouterr().out
    assert "round trip p50 ms" in table and "targets at -c 2" in table
    results = json.loads(out.read_text())
    rows = results["rows"]
    assert ROWS <= set(rows)
    assert results["meta"]["mode"] == "quick"

    for concurrency in ("c1", "c2", "c4"):
        assert_latency_cell(rows["round_trip"][concurrency])
        assert_rate_cell(rows["throughput"][concurrency])
    assert_rate_cell(rows["publish_only"])
    assert_rate_cell(rows["batch"])
    assert set(rows["payload"]) == {"1KB", "100KB", "1MB"}
    for cell in rows["payload"].values():
        assert_latency_cell(cell)
    assert is_number(rows["redis_ping"]["p50"])

    memory = rows["memory"]
    assert memory["calls"] == 2000
    assert all(is_number(memory[k]) for k in ("rss_before_mb", "rss_after_mb", "drain_calls_per_s"))

    # No row failed or was skipped: CI provides RabbitMQ and PostgreSQL (scripts/servers.sh
    # fails loudly when it cannot), so a skipped RabbitMQ row is a failure here.
    assert failed_or_skipped(rows) == []
    rabbit = rows["rabbitmq"]
    assert is_number(rabbit["round_trip"]["ratios"]["framework/bare_default"]["p50"])
    assert is_number(rabbit["throughput"]["ratios"]["framework/bare_default"])
    assert all(is_number(v["p50"]) for v in rabbit["vs_redis"].values())
    assert_storage_row(rows["storage"])
    bridge = rows["bridge"]  # the bench runs on its own Redis here, so the row is measured
    assert is_number(bridge["added_p50_ms"])
    for path in ("direct", "bridge"):
        assert all(is_number(bridge[path][k]) for k in ("p50_ms", "p99_ms", "calls_per_s"))

    quiet = rows["events_off"]
    assert is_number(quiet["p50_ms"]["framework_quiet"])
    assert all(is_number(v["p50"]) and is_number(v["throughput"]) for v in quiet["ratios"].values())

    # And every target is reported with a numeric value and a verdict, whatever the verdict
    assert len(results["targets"]) == len(TARGETS)
    for target in results["targets"]:
        assert is_number(target["value"]) and isinstance(target["pass"], bool)

    # And the plot is drawn; only a missing matplotlib (not in the test extra) excuses it
    if importlib.util.find_spec("matplotlib") is not None:
        assert plot.exists() and plot.stat().st_size > 0
        assert results["notes"] == []
    else:
        assert [n for n in results["notes"] if "matplotlib" not in n] == []
        assert any("matplotlib" in note for note in results["notes"])


def test_the_ab_comparisons_run_and_report_each_ratio(
    capsys: pytest.CaptureFixture[str], no_leftover_processes: None
) -> None:
    # Given the smallest A/B run
    from bench.ab import main as ab_main

    # When it runs, then it reports the three comparisons with their ratios
    assert ab_main(["--rounds", "1", "--calls", "20"]) == 0
    printed = capsys.readouterr().out
    for ratio in ("ours/celery", "ours/kombu", "notify_many/notify_loop"):
        assert ratio in printed


def test_the_peer_rows_run_end_to_end_with_dramatiq_in_its_own_venv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leftover_processes: None
) -> None:
    # Given Dramatiq's venv (built once into .bench-venvs, then reused), or a reason it cannot be
    from bench.peers import venvs

    try:
        venvs.python_of(venvs.DRAMATIQ)
    except venvs.VenvUnavailable as exc:
        pytest.skip(f"the Dramatiq venv cannot be built here (no package index?): {exc}")
    out = tmp_path / "peers.json"

    # When the side-by-side run measures ours and Dramatiq on Redis with tiny numbers
    code = main(
        ["--peers", "--quick", "--only", "ours_redis,dramatiq_redis", "--rounds", "1",
         "--latency-calls", "10", "--calls", "20", "--out", str(out),
         "--log-dir", str(tmp_path / "logs"), "--quiet"]
    )  # fmt: skip

    # Then both rows have figures counted by the same meter, and the targets they cannot
    # check are skipped with the reason, not failed
    assert code == 0
    results = json.loads(out.read_text())
    assert results["skipped"] == {}
    assert set(results["systems"]) == {"ours_redis", "dramatiq_redis"}
    for figures in results["systems"].values():
        assert all(is_number(figures[k]) for k in ("p50_ms", "p99_ms", "calls_per_s"))
        assert is_number(figures["cpu_ms"]["total"]) and figures["cpu_ms"]["workers"] > 0
        assert figures["redis_commands"] > 0
    assert "dramatiq" in results["systems"]["dramatiq_redis"]["versions"]
    verdicts = {check["name"]: check["verdict"] for check in results["targets"]["checks"]}
    assert set(verdicts.values()) == {"SKIP"}
    table = capsys.readouterr().out
    assert "Dramatiq 2.2, Redis + Redis results" in table and "target SKIP" in table
    assert any("original Commissaire bus: not measured" in n for n in results["notes"])


def test_peer_targets_pass_fail_or_skip_on_paired_ratios() -> None:
    from bench.peers.report import evaluate
    from bench.peers.run import default_keys

    def system(p50: float, rate: float) -> dict[str, Any]:
        return {"round_p50_ms": [p50], "round_p99_ms": [p50 * 2], "round_calls_per_s": [rate]}

    # Given ours at 0.8x bare Celery's p50 and 1.2x its throughput, and no Nameko or RabbitMQ
    results = {"systems": {"ours_redis": system(0.8, 1200), "celery_redis": system(1.0, 1000)}}

    # Then the Celery targets pass, the others are skipped, and nothing is reported as distance
    checks = evaluate(results)
    verdicts = [check["verdict"] for check in checks["checks"]]
    assert verdicts == ["PASS", "PASS", "SKIP", "SKIP", "SKIP", "SKIP"]
    assert checks["distances"] == {}
    results["systems"]["celery_redis"] = system(0.7, 1000)
    assert evaluate(results)["checks"][0]["verdict"] == "FAIL"
    # And the original bus is a row only when its source is given
    assert "original_redis" not in default_keys(original=False)
    assert "original_redis" in default_keys(original=True)

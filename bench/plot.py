"""``--plot``: round-trip latency and collected throughput against worker pool size.

matplotlib is optional: without it :func:`plot` draws nothing and says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .systems import BARE_DEFAULT, BARE_IDENTICAL, FRAMEWORK

_LABELS = {
    FRAMEWORK: "framework",
    BARE_IDENTICAL: "bare (identical config)",
    BARE_DEFAULT: "bare (default config)",
}


def plot(results: dict[str, Any], path: str | Path) -> str | None:
    """Write the PNG; return None, or a note saying why nothing was drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; no plot (pip install matplotlib)"
    rows = results["rows"]
    pool_sizes = results["meta"]["plan"]["concurrency"]
    figure, (latency_axes, rate_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in _LABELS.items():
        p50 = [rows["round_trip"][f"c{c}"]["systems"][key]["p50"] for c in pool_sizes]
        p99 = [rows["round_trip"][f"c{c}"]["systems"][key]["p99"] for c in pool_sizes]
        rates = [rows["throughput"][f"c{c}"]["systems"][key]["median"] for c in pool_sizes]
        line = latency_axes.plot(pool_sizes, p50, marker="o", label=f"{label} p50")[0]
        latency_axes.plot(
            pool_sizes, p99, marker=".", linestyle=":", color=line.get_color(), label=f"{label} p99"
        )
        rate_axes.plot(pool_sizes, rates, marker="o", label=label)
    latency_axes.set(
        title="sequential round trip",
        xlabel="worker processes (-c)",
        ylabel="ms",
        xticks=pool_sizes,
    )
    rate_axes.set(
        title="sent, then collected",
        xlabel="worker processes (-c)",
        ylabel="calls/s",
        xticks=pool_sizes,
    )
    latency_axes.set_ylim(bottom=0)
    rate_axes.set_ylim(bottom=0)
    latency_axes.legend(fontsize=7)
    rate_axes.legend(fontsize=7)
    meta = results["meta"]
    figure.suptitle(
        f"python -m bench ({meta['mode']}), Celery {meta['celery']}, {meta['cpus']} CPUs",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None

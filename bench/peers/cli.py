"""The ``--peers`` options of ``python -m bench`` and the side-by-side run they start."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ..stack import make_log_dir
from .contenders import BY_KEY, ORIGINAL, Setup
from .report import evaluate, render
from .run import FULL, QUICK, default_keys, run_peers
from .venvs import DEFAULT_ROOT

#: Where the side-by-side results go unless ``--out``.
DEFAULT_OUT = "bench-peers.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("side by side with the peers (--peers)")
    group.add_argument(
        "--peers",
        action="store_true",
        help="only the side-by-side rows: ours, bare Celery, Nameko and Dramatiq, "
        f"each peer in its own venv (JSON to {DEFAULT_OUT} unless --out)",
    )
    group.add_argument(
        "--only",
        default=None,
        metavar="KEYS",
        help=f"comma-separated systems of --peers (of: {', '.join(BY_KEY)})",
    )
    group.add_argument(
        "--original",
        default=None,
        metavar="PATH",
        help="a local copy of the original commissaire-service source: adds its bus to --peers",
    )
    group.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="--peers: run no round that would end after MINUTES of rounds (fewer rounds then)",
    )
    group.add_argument(
        "--venvs",
        default=str(DEFAULT_ROOT),
        metavar="DIR",
        help="where the peers' virtual environments are built and reused (default: %(default)s)",
    )


def run_from_args(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """Run the side-by-side rows as ``args`` say; print the table; write the JSON."""
    sizes = {
        "rounds": args.rounds,
        "latency_calls": args.latency_calls,
        "throughput_calls": args.throughput_calls,
        "budget_s": args.budget * 60 if args.budget else None,
    }
    plan = dataclasses.replace(
        QUICK if args.quick else FULL, **{k: v for k, v in sizes.items() if v is not None}
    )
    original = Path(args.original).resolve() if args.original else None
    if original is not None and not original.is_dir():
        print(f"--original {args.original}: not a directory", file=sys.stderr)
        return 2
    keys = default_keys(original is not None)
    if args.only:
        keys = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in keys if k not in BY_KEY]
        if unknown:
            print(f"--only: unknown systems {', '.join(unknown)}", file=sys.stderr)
            return 2
        if ORIGINAL in keys and original is None:
            print("--only original_redis needs --original PATH", file=sys.stderr)
            return 2
    with contextlib.ExitStack() as stack:
        log_dir = make_log_dir(stack, args)
        setup = Setup(
            log_dir=log_dir,
            venv_root=Path(args.venvs),
            timeout_s=120.0 if not args.quick else 60.0,
            loglevel=args.worker_loglevel,
            original=original,
        )
        results = run_peers(plan, setup, keys, progress)
    results["targets"] = evaluate(results)
    out = args.out or DEFAULT_OUT
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"results: {out}")
    return 0

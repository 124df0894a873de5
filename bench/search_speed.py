"""Benchmark: wall time of the architecture search for 4 students with the paper's settings.

Runs ``babyteach.search.search_architectures`` with the teacher, search space, BO budget
(init_points, n_iter) and seed of ``config.yaml`` (vocabulary ``tokenizer.vocab_size``,
``model.block_size``), ``--repeats`` times, and reports the median total and per-student
time (per student: from the previous student's log line to its own, BO plus the grid
enumeration) and whether each student reached the exact grid optimum (target: ≤ 5 s in
all on CPU). The search itself runs BLAS single-threaded (``babyteach.search``), so the
machine's thread settings do not matter; the header gives the 1-min load average, as other
processes on the machine slow it down::

    python bench/search_speed.py                       # config.yaml, 4 students, 3 runs
    python bench/search_speed.py --config my.yaml --peers 2
    python bench/search_speed.py --quick               # smoke run: 2 + 3 evaluations, 1 run
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from babyteach.models import Architecture
from babyteach.search import SearchSpace, search_architectures

REPO = Path(__file__).resolve().parents[1]


class _PeerClock(logging.Handler):
    """Records when ``babyteach.search`` logs each finished student (its ``peer %d`` line)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.stamps: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("peer "):
            self.stamps.append(time.perf_counter())


def timed_search(settings: dict[str, Any], n_peers: int) -> tuple[float, list[float], dict[str, Any]]:
    """One search: total seconds, seconds per student, and the result."""
    clock = _PeerClock()
    logger = logging.getLogger("babyteach.search")
    logger.addHandler(clock)
    logger.setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        result = search_architectures(n_peers=n_peers, **settings)
        total = time.perf_counter() - start
    finally:
        logger.removeHandler(clock)
    bounds = [start, *clock.stamps]
    return total, [b - a for a, b in itertools.pairwise(bounds)], result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=REPO / "config.yaml", help="workflow config (default: %(default)s)"
    )
    parser.add_argument("--peers", type=int, default=4, help="students searched (default: %(default)s)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed searches; the median is reported (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: init_points 2, n_iter 3, one search")
    args = parser.parse_args(argv)

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    search = config["search"]
    settings = {
        "teacher": Architecture.from_mapping(config["model"]["teacher"], "model.teacher"),
        "space": SearchSpace(**search["space"]),
        "vocab_size": config["tokenizer"]["vocab_size"],
        "block_size": config["model"]["block_size"],
        "init_points": search["init_points"],
        "n_iter": search["n_iter"],
        "seed": search["seed"],
    }
    if args.quick:
        settings["init_points"], settings["n_iter"], args.repeats = 2, 3, 1

    load_before = os.getloadavg()[0]
    runs = [timed_search(settings, args.peers) for _ in range(args.repeats)]
    totals = [total for total, _, _ in runs]
    result = runs[0][2]
    assert all(r == result for _, _, r in runs), "the search is not deterministic"
    print(
        f"teacher {settings['teacher'].describe()} ({result['teacher']['params']:,} params), vocab "
        f"{settings['vocab_size']}, block {settings['block_size']}, {settings['init_points']} init + "
        f"{settings['n_iter']} BO points per student, seed {settings['seed']}, median of {args.repeats}, "
        f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"acquisition: {result['optimizer']['acquisition']}; GP: {result['optimizer']['gp']} "
        f"({result['optimizer']['library']})"
    )
    print("| student | target params | BO arch (BO's heads) | grid optimum | rel. error BO / grid | at optimum | s |")
    print("|---|---|---|---|---|---|---|")
    for i, peer in enumerate(result["peers"]):
        seconds = statistics.median(per_peer[i] for _, per_peer, _ in runs)
        bo, grid = Architecture(**peer["arch"]), Architecture(**peer["grid_optimum"]["arch"])
        at_optimum = peer["params"] == peer["grid_optimum"]["params"]
        print(
            f"| {peer['peer']} | {peer['target']:,.0f} | {bo.describe()} ({peer.get('bo_heads', bo.heads)}) | "
            f"{grid.describe()} | {peer['rel_error']:.4f} / {peer['grid_optimum']['rel_error']:.4f} | "
            f"{'yes' if at_optimum else 'no'} | {seconds:.2f} |"
        )
    print(
        f"result: {args.peers} students in {statistics.median(totals):.2f} s (runs: "
        f"{', '.join(f'{t:.2f}' for t in totals)}; target ≤ 5 s)"
    )


if __name__ == "__main__":
    main()

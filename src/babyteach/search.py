"""Bayesian architecture search for diverse students (METHODS.md, "Architecture search").

For ``p`` students and a teacher of ``N`` parameters, student ``i = 1..p`` targets
``N_i = N / (i + 1)``. Each student's architecture (layers × heads × hidden, intermediate
= 4 × hidden, vocabulary and positions as the teacher's) maximises
``-|params(a) - N_i| / N_i`` with ``bayes_opt.BayesianOptimization``, where ``params`` is
the closed-form :func:`babyteach.models.count_parameters`::

    space = SearchSpace(layers=(1, 12), heads=(1, 2, 4, 8, 12), hidden=int_range(64, 768, 64))
    result = search_architectures(Architecture(12, 12, 768), n_peers=4, space=space, vocab_size=16384,
                                  block_size=128, init_points=10, n_iter=40, seed=0)
    write_search("results/search/4.json", result)

The optimiser sees three integer parameters, using ``bayes_opt``'s own integer support
(its GP kernel rounds, nothing is rounded here): ``layers`` itself and the *indices* into the
sorted ``heads`` and ``hidden`` lists (a continuous relaxation of the indices keeps their
order, which the GP can exploit).

Infeasible points (``hidden % heads != 0``) are **mapped to a valid point**, never
penalised: the head count is replaced by the allowed count nearest to the requested one
(ties → fewer heads) that divides ``hidden``. This loses nothing, since the head count does
not change the parameter count. Hidden sizes that no allowed head count divides are left
out of the optimiser's range (and listed as ``unusable_hidden`` in the result), so every
point the optimiser proposes is a valid architecture.

Every evaluated point is kept (the trace), and the whole grid is enumerated for the exact
optimum, so the report can show how close the search came.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import bayes_opt
from bayes_opt import BayesianOptimization, acquisition

from babyteach.errors import InputError
from babyteach.io import write_json_atomic
from babyteach.models import Architecture, count_parameters

log = logging.getLogger(__name__)

#: Format version of :func:`search_architectures` results.
SEARCH_VERSION = 1

#: Exploration weight of the upper-confidence-bound acquisition (bayes_opt's default).
UCB_KAPPA = 2.576

def int_range(low: int, high: int, step: int) -> tuple[int, ...]:
    """``low, low + step, …`` up to and including ``high`` (if it lies on the grid)."""
    if step < 1 or low > high:
        raise InputError(f"search.space.hidden: bad range low={low}, high={high}, step={step}")
    return tuple(range(low, high + 1, step))


def _int_tuple(values: Any, key: str) -> tuple[int, ...]:
    """Sorted, de-duplicated positive integers, or an InputError naming ``key``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InputError(f"{key}: expected a list of positive integers, got {values!r}")
    values = list(values)
    if not values:
        raise InputError(f"{key}: the list is empty; give at least one positive integer")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise InputError(f"{key}: expected positive integers, got {bad}")
    return tuple(sorted(set(values)))


@dataclass(frozen=True)
class SearchSpace:
    """Where students are searched: a layer range and lists of allowed head counts and widths.

    Lists are stored sorted and de-duplicated. At least one ``(hidden, heads)`` pair must
    have ``hidden % heads == 0``.
    """

    layers: tuple[int, int]  # inclusive (min, max) number of layers
    heads: tuple[int, ...]  # allowed attention head counts
    hidden: tuple[int, ...]  # allowed hidden sizes; see int_range for a stepped range

    def __post_init__(self) -> None:
        layers = tuple(self.layers) if isinstance(self.layers, (list, tuple)) else self.layers
        if (
            not isinstance(layers, tuple)
            or len(layers) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in layers)
            or not 1 <= layers[0] <= layers[1]
        ):
            raise InputError(
                f"search.space.layers: expected [min, max] with 1 <= min <= max, got {self.layers!r}"
            )
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "heads", _int_tuple(self.heads, "search.space.heads"))
        object.__setattr__(self, "hidden", _int_tuple(self.hidden, "search.space.hidden"))
        if not self.usable_hidden:
            raise InputError(
                f"search.space: no size in search.space.hidden {list(self.hidden)} is divisible by any "
                f"head count in search.space.heads {list(self.heads)}; add 1 to the heads or "
                "use multiples of them as hidden sizes"
            )

    def feasible_heads(self, hidden: int) -> tuple[int, ...]:
        """The allowed head counts that divide ``hidden``."""
        return tuple(h for h in self.heads if hidden % h == 0)

    @property
    def usable_hidden(self) -> tuple[int, ...]:
        """The hidden sizes that at least one allowed head count divides."""
        return tuple(h for h in self.hidden if self.feasible_heads(h))

    def architectures(self) -> list[Architecture]:
        """Every feasible architecture of the space (the grid)."""
        return [
            Architecture(layers, heads, hidden)
            for layers in range(self.layers[0], self.layers[1] + 1)
            for hidden in self.usable_hidden
            for heads in self.feasible_heads(hidden)
        ]

    def pbounds(self) -> dict[str, tuple[int, int, type[int]]]:
        """``bayes_opt`` integer bounds: layers, and indices into ``heads`` and ``usable_hidden``."""
        return {
            "layers": (self.layers[0], self.layers[1], int),
            "heads_index": (0, len(self.heads) - 1, int),
            "hidden_index": (0, len(self.usable_hidden) - 1, int),
        }

    def decode(self, layers: int, heads_index: int, hidden_index: int) -> Architecture:
        """The (always feasible) architecture a point of :meth:`pbounds` stands for.

        The requested head count ``heads[heads_index]`` is mapped to the nearest allowed
        count dividing the hidden size (ties → fewer heads).
        """
        hidden = self.usable_hidden[hidden_index]
        requested = self.heads[heads_index]
        heads = min(self.feasible_heads(hidden), key=lambda h: (abs(h - requested), h))
        return Architecture(layers=layers, heads=heads, hidden=hidden)

    def to_dict(self) -> dict[str, list[int]]:
        """JSON-able form, as in the config, plus the hidden sizes left out as unusable."""
        return {
            "layers": list(self.layers),
            "heads": list(self.heads),
            "hidden": list(self.hidden),
            "unusable_hidden": [h for h in self.hidden if h not in self.usable_hidden],
        }


def _relative_error(params: int, target: float) -> float:
    return abs(params - target) / target


def grid_optimum(space: SearchSpace, target: float, vocab_size: int, block_size: int) -> dict[str, Any]:
    """The exact best architecture of ``space`` for ``target`` parameters, by enumeration.

    The head count does not change the parameter count, so all allowed head counts
    dividing the optimum's hidden size are equally good; they are listed as
    ``equivalent_heads`` and the one closest to 64-wide heads (RoBERTa's) is reported
    (ties → fewer heads). Remaining ties: fewer layers, then smaller hidden.
    """
    best = min(
        space.architectures(),
        key=lambda a: (
            abs(count_parameters(a, vocab_size, block_size) - target),
            a.layers,
            a.hidden,
            abs(a.hidden // a.heads - 64),
            a.heads,
        ),
    )
    params = count_parameters(best, vocab_size, block_size)
    return {
        "arch": best.to_dict(),
        "params": params,
        "rel_error": _relative_error(params, target),
        "equivalent_heads": list(space.feasible_heads(best.hidden)),
    }


def _peer_random_state(seed: int, peer: int) -> int:
    """An independent seed per (seed, peer): peer i's search does not depend on n_peers."""
    return int(np.random.SeedSequence([seed, peer]).generate_state(1)[0])


def _search_one(
    space: SearchSpace,
    target: float,
    vocab_size: int,
    block_size: int,
    init_points: int,
    n_iter: int,
    random_state: int,
) -> dict[str, Any]:
    """One student's BO run: chosen architecture and the trace of every evaluation."""
    trace: list[dict[str, Any]] = []
    phase = "init"

    def objective(layers: int, heads_index: int, hidden_index: int) -> float:
        arch = space.decode(layers, heads_index, hidden_index)
        params = count_parameters(arch, vocab_size, block_size)
        value = -_relative_error(params, target)
        trace.append(
            {
                "step": len(trace),
                "phase": phase,
                "requested": {
                    "layers": layers,
                    "heads": space.heads[heads_index],
                    "hidden": space.usable_hidden[hidden_index],
                },
                "arch": arch.to_dict(),
                "params": params,
                "objective": value,
            }
        )
        return value

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Non-float parameters are experimental")
        optimizer = BayesianOptimization(
            f=objective,
            pbounds=space.pbounds(),
            acquisition_function=acquisition.UpperConfidenceBound(kappa=UCB_KAPPA),
            random_state=random_state,
            verbose=0,
        )
        optimizer.maximize(init_points=init_points, n_iter=0)
        phase = "bo"
        if n_iter:
            optimizer.maximize(init_points=0, n_iter=n_iter)

    best = max(trace, key=lambda t: t["objective"])  # first of equals: the earliest found
    return {
        "arch": best["arch"],
        "params": best["params"],
        "rel_error": _relative_error(best["params"], target),
        "trace": trace,
    }


def search_architectures(
    teacher: Architecture,
    n_peers: int,
    space: SearchSpace,
    vocab_size: int,
    block_size: int,
    init_points: int,
    n_iter: int,
    seed: int,
) -> dict[str, Any]:
    """Search one architecture per student, targets ``N / (i + 1)`` for i = 1..n_peers.

    Returns a JSON-able dict: the teacher (arch, params), the space and BO settings, and
    per peer the target, the chosen arch, its params and relative error, the trace of every
    evaluated point (requested point, mapped arch, params, objective, phase ``init`` or
    ``bo``), and the exact ``grid_optimum`` with ``gap`` = BO's relative error minus the
    grid's. Same inputs, same result.
    """
    if isinstance(n_peers, bool) or not isinstance(n_peers, int) or n_peers < 1:
        raise InputError(f"search.n_peers: need at least one student, got {n_peers!r}")
    if init_points < 0:
        raise InputError(f"search.init_points: must be >= 0, got {init_points}")
    if n_iter < 0:
        raise InputError(f"search.n_iter: must be >= 0, got {n_iter}")
    if init_points + n_iter < 1:
        raise InputError("search.init_points + search.n_iter: must evaluate at least one point")
    if vocab_size < 1 or block_size < 1:
        raise InputError(f"vocab_size ({vocab_size}) and block_size ({block_size}) must be positive")
    teacher_params = count_parameters(teacher, vocab_size, block_size)
    unusable = [h for h in space.hidden if h not in space.usable_hidden]
    if unusable:
        log.warning("search.space.hidden: %s divisible by no allowed head count; left out", unusable)
    peers = []
    for i in range(1, n_peers + 1):
        target = teacher_params / (i + 1)
        found = _search_one(
            space, target, vocab_size, block_size, init_points, n_iter, _peer_random_state(seed, i)
        )
        grid = grid_optimum(space, target, vocab_size, block_size)
        gap = found["rel_error"] - grid["rel_error"]
        log.info(
            "peer %d: target %.0f, BO %s (%d params, rel. error %.4f, %d evaluations), grid optimum %s (%.4f)",
            *(i, target, found["arch"], found["params"], found["rel_error"], len(found["trace"])),
            *(grid["arch"], grid["rel_error"]),
        )
        peers.append({"peer": i, "target": target, **found, "grid_optimum": grid, "gap": gap})
    return {
        "version": SEARCH_VERSION,
        "teacher": {"arch": teacher.to_dict(), "params": teacher_params},
        "vocab_size": vocab_size,
        "block_size": block_size,
        "space": space.to_dict(),
        "optimizer": {
            "library": f"bayes_opt {bayes_opt.__version__}",
            "acquisition": f"UpperConfidenceBound(kappa={UCB_KAPPA})",
            "init_points": init_points,
            "n_iter": n_iter,
            "seed": seed,
            "objective": "-|params(a) - target| / target",
        },
        "peers": peers,
    }


def write_search(path: str | PathLike[str], result: dict[str, Any]) -> None:
    """Write a :func:`search_architectures` result as JSON, atomically."""
    write_json_atomic(path, result)



def students_from_search(path: str | PathLike[str]) -> dict[str, Architecture]:
    """The searched peers of a :func:`write_search` file as ``{"peer-1": arch, …}`` (peer 1 largest).

    Every method with the same teacher and peer count trains these same architectures.
    """
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        return {
            f"peer-{peer['peer']}": Architecture(**{k: int(v) for k, v in peer["arch"].items()})
            for peer in result["peers"]
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a readable architecture-search result ({error}); rerun the search rule") from error

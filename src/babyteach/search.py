"""Bayesian architecture search for diverse students (docs/METHODS.md, "Architecture search").

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

**The BO loop** is bayes_opt's suggest/register API: ``init_points`` points from
``BayesianOptimization.random_sample``, then ``n_iter`` steps of ``BayesianOptimization.suggest``
(bayes_opt's GP, refitted every step, and its upper-confidence-bound acquisition) and
``register``. Two settings make it fast; on the paper's config (4 students, seeds 0–7) they
change no result and no trace, checked against bayes_opt's default ``maximize`` (whose traces
only lack the repeated points it skips, see below) and against 5 restarts:

- The grid is small (the paper's: 12 × 5 × 12 = 720 points), so the acquisition is maximised
  by bayes_opt's own random-sample search alone, with :data:`ACQ_SAMPLES_PER_POINT` samples per
  grid point (``n_random``), and its differential evolution is off (``n_smart=0``,
  :class:`GridUpperConfidenceBound`). On a covered integer grid the evolution cannot find a
  better point, and it took about 70 % of the run time.
- The GP keeps bayes_opt's settings except the restarts of its kernel-hyperparameter fit:
  :data:`GP_RESTARTS` instead of 5 (``set_gp_params``), which saves a third of the rest.

The GP works on at most ``init_points + n_iter`` points, so BLAS runs single-threaded (more
threads only add overhead, and 10× slow-downs on a loaded machine). bayes_opt does not
register a point twice: a step (random or BO) that proposes an already evaluated point is still
a step, kept in the trace (evaluated again, same value), and leaves the GP's data unchanged.
So the trace always holds ``init_points + n_iter`` points (``maximize`` would drop such a step).

Infeasible points (``hidden % heads != 0``) are **mapped to a valid point**, never
penalised: the head count is replaced by the allowed count nearest to the requested one
(ties → fewer heads) that divides ``hidden``. This loses nothing, since the head count does
not change the parameter count. Hidden sizes that no allowed head count divides are left
out of the optimiser's range (and listed as ``unusable_hidden`` in the result), so every
point the optimiser proposes is a valid architecture.

**Head-count rule.** Because the objective cannot tell head counts apart, the head count of
the best point BO happens to evaluate first is arbitrary (e.g. 6 layers, 1 head, hidden
640). The reported architectures therefore take their head count from a fixed rule
(:meth:`SearchSpace.preferred_heads`): among the allowed counts dividing the hidden size,
the one whose head width ``hidden / heads`` is closest to 64 (RoBERTa-base's), ties → more
heads. It is applied to BO's result (whose own head count is kept as ``bo_heads``) and to
the grid optimum; the trace keeps every point as evaluated.

Every evaluated point is kept (the trace), and the whole grid is enumerated for the exact
optimum, so the report can show how close the search came.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from typing import Any

import bayes_opt
import numpy as np
from bayes_opt import BayesianOptimization, acquisition
from bayes_opt.target_space import TargetSpace
from sklearn.gaussian_process import GaussianProcessRegressor
from threadpoolctl import threadpool_limits

from babyteach.errors import InputError
from babyteach.io import read_json, write_json_atomic
from babyteach.models import Architecture, count_parameters

log = logging.getLogger(__name__)

#: Format version of :func:`search_architectures` results. 2: head counts of ``arch`` and
#: ``grid_optimum.arch`` follow :data:`HEADS_RULE`; BO's own head count is kept as ``bo_heads``.
SEARCH_VERSION = 2

#: Head width the head-count rule aims for: RoBERTa-base's 768 / 12.
TARGET_HEAD_WIDTH = 64

#: The head-count rule in words, recorded in every result.
HEADS_RULE = (
    f"heads = the allowed head count dividing hidden whose head width hidden/heads is closest to "
    f"{TARGET_HEAD_WIDTH} (RoBERTa-base), ties to more heads; the parameter count does not depend on heads"
)

#: Exploration weight of the upper-confidence-bound acquisition (bayes_opt's default).
UCB_KAPPA = 2.576

#: Restarts of the GP's kernel-hyperparameter fit (bayes_opt's default: 5).
GP_RESTARTS = 1

#: Random samples per grid point when maximising the acquisition: the acquisition's best grid
#: point is among the samples but with probability exp(-10) ≈ 5e-5 per BO step.
ACQ_SAMPLES_PER_POINT = 10

#: At most this many acquisition samples per BO step (bayes_opt's default is 10,000), so a huge
#: space does not exhaust memory; only spaces over 10,000 points are sampled more thinly.
ACQ_MAX_SAMPLES = 100_000


class GridUpperConfidenceBound(acquisition.UpperConfidenceBound):
    """bayes_opt's UCB, maximised by bayes_opt's random-sample search only (no differential evolution).

    ``suggest`` is bayes_opt's own, always called with ``n_random`` samples and ``n_smart=0``,
    whatever the caller (``BayesianOptimization.suggest`` passes bayes_opt's defaults) asks.
    """

    def __init__(self, kappa: float, n_random: int) -> None:
        super().__init__(kappa=kappa)
        if n_random < 1:
            raise ValueError(f"n_random must be positive, got {n_random}")
        self.n_random = n_random

    def suggest(
        self,
        gp: GaussianProcessRegressor,
        target_space: TargetSpace,
        n_random: int | None = None,
        n_smart: int | None = None,
        fit_gp: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> np.ndarray:
        """bayes_opt's ``suggest`` with ``n_random=self.n_random`` and ``n_smart=0`` (arguments ignored)."""
        del n_random, n_smart
        return super().suggest(
            gp=gp,
            target_space=target_space,
            n_random=self.n_random,
            n_smart=0,
            fit_gp=fit_gp,
            random_state=random_state,
        )


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
            raise InputError(f"search.space.layers: expected [min, max] with 1 <= min <= max, got {self.layers!r}")
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

    def preferred_heads(self, hidden: int) -> int:
        """The head count the search reports for ``hidden`` (:data:`HEADS_RULE`).

        Every allowed count dividing ``hidden`` gives the same parameter count, so a
        deterministic convention picks one: head width ``hidden / heads`` closest to
        :data:`TARGET_HEAD_WIDTH`, ties (e.g. widths 96 and 32) → more heads.
        """
        feasible = self.feasible_heads(hidden)
        if not feasible:
            raise InputError(f"search.space: no allowed head count divides hidden size {hidden}")
        return min(feasible, key=lambda heads: (abs(hidden // heads - TARGET_HEAD_WIDTH), -heads))

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

    @property
    def n_points(self) -> int:
        """The number of points of :meth:`pbounds`' integer grid (infeasible combinations included)."""
        return (self.layers[1] - self.layers[0] + 1) * len(self.heads) * len(self.usable_hidden)

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

    The best (layers, hidden) is enumerated; ties → fewer layers, then smaller hidden. The
    head count does not change the parameter count, so all allowed head counts dividing
    the optimum's hidden size are equally good: they are listed as ``equivalent_heads`` and
    the one of :meth:`SearchSpace.preferred_heads` is reported.
    """
    shapes = sorted({(a.layers, a.hidden) for a in space.architectures()})  # (layers, hidden), ascending

    def error(shape: tuple[int, int]) -> float:
        return abs(count_parameters(Architecture(shape[0], 1, shape[1]), vocab_size, block_size) - target)

    layers, hidden = min(shapes, key=error)  # first of equals: fewer layers, then smaller hidden
    best = Architecture(layers, space.preferred_heads(hidden), hidden)
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


def acquisition_samples(space: SearchSpace) -> int:
    """``n_random`` of the acquisition search: :data:`ACQ_SAMPLES_PER_POINT` per grid point, capped."""
    return min(ACQ_SAMPLES_PER_POINT * space.n_points, ACQ_MAX_SAMPLES)


def _search_one(
    space: SearchSpace,
    target: float,
    vocab_size: int,
    block_size: int,
    init_points: int,
    n_iter: int,
    random_state: int,
) -> dict[str, Any]:
    """One student's BO run: chosen architecture (heads by the rule) and the trace of every evaluation."""
    trace: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Non-float parameters are experimental")
        optimizer = BayesianOptimization(
            f=None,
            pbounds=space.pbounds(),
            acquisition_function=GridUpperConfidenceBound(kappa=UCB_KAPPA, n_random=acquisition_samples(space)),
            random_state=random_state,
            verbose=0,
        )
    optimizer.set_gp_params(n_restarts_optimizer=GP_RESTARTS)

    def evaluate(point: dict[str, int], phase: str) -> None:
        layers, heads_index, hidden_index = point["layers"], point["heads_index"], point["hidden_index"]
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
        if optimizer.space.params_to_array(point) not in optimizer.space:  # a repeat leaves the GP as it is
            optimizer.register(params=point, target=value)

    with threadpool_limits(limits=1, user_api="blas"):  # GP matrices: at most n_random × evaluated points
        for point in optimizer.random_sample(init_points):
            evaluate(point, "init")
        for _ in range(n_iter):
            evaluate(optimizer.suggest(), "bo")  # the first is random if there were no init points

    best = max(trace, key=lambda t: t["objective"])  # first of equals: the earliest found
    # Equal objectives include every head count of the best (layers, hidden): BO's is arbitrary.
    found = Architecture(**best["arch"])
    chosen = Architecture(found.layers, space.preferred_heads(found.hidden), found.hidden)
    params = count_parameters(chosen, vocab_size, block_size)
    return {
        "arch": chosen.to_dict(),
        "bo_heads": found.heads,
        "params": params,
        "rel_error": _relative_error(params, target),
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
    tolerance: float = 0.15,
) -> dict[str, Any]:
    """Search one architecture per student, targets ``N / (i + 1)`` for i = 1..n_peers.

    A target that no architecture of the space reaches within ``tolerance`` (relative error
    of the exact grid optimum) is an :class:`InputError` naming the closest architecture.

    Returns a JSON-able dict: the format ``version``, the teacher (arch, params), the space,
    BO settings and the ``heads_rule``, and per peer the target, the chosen arch (layers and
    hidden from BO's best point, heads by the rule), ``bo_heads`` (that point's own head
    count), its params and relative error, the trace of every evaluated point as evaluated
    (requested point, mapped arch, params, objective, phase ``init`` or ``bo``), and the
    exact ``grid_optimum`` (heads by the rule) with ``gap`` = BO's relative error minus the
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
    if not tolerance > 0:
        raise InputError(f"search.tolerance: must be positive, got {tolerance}")
    teacher_params = count_parameters(teacher, vocab_size, block_size)
    unusable = [h for h in space.hidden if h not in space.usable_hidden]
    if unusable:
        log.warning("search.space.hidden: %s divisible by no allowed head count; left out", unusable)
    peers = []
    for i in range(1, n_peers + 1):
        target = teacher_params / (i + 1)
        closest = grid_optimum(space, target, vocab_size, block_size)
        if closest["rel_error"] > tolerance:
            raise InputError(
                f"search.space: no architecture reaches student {i}'s target of {target:,.0f} parameters "
                f"(teacher {teacher_params:,} / {i + 1}) within search.tolerance = {tolerance}; the closest is "
                f"{Architecture(**closest['arch']).describe()} with {closest['params']:,} parameters (relative error {closest['rel_error']:.3f}). "
                "Widen search.space (e.g. smaller hidden sizes or fewer layers) or raise search.tolerance"
            )
        found = _search_one(space, target, vocab_size, block_size, init_points, n_iter, _peer_random_state(seed, i))
        grid = closest
        gap = found["rel_error"] - grid["rel_error"]
        log.info(
            "peer %d: target %.0f, BO %s (BO's heads %d; %d params, rel. error %.4f, %d evaluations), "
            "grid optimum %s (%.4f)",
            *(i, target, found["arch"], found["bo_heads"], found["params"], found["rel_error"], len(found["trace"])),
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
            "acquisition": (
                f"UpperConfidenceBound(kappa={UCB_KAPPA}), maximised over n_random={acquisition_samples(space)} "
                "random grid samples, n_smart=0"
            ),
            "gp": f"bayes_opt's GaussianProcessRegressor, n_restarts_optimizer={GP_RESTARTS}",
            "init_points": init_points,
            "n_iter": n_iter,
            "seed": seed,
            "objective": "-|params(a) - target| / target",
            "tolerance": tolerance,
        },
        "heads_rule": HEADS_RULE,
        "peers": peers,
    }


def write_search(path: str | PathLike[str], result: dict[str, Any]) -> None:
    """Write a :func:`search_architectures` result as JSON, atomically."""
    write_json_atomic(path, result)


def students_from_search(path: str | PathLike[str], peers: int | None = None) -> dict[str, Architecture]:
    """The searched peers of a :func:`write_search` file as ``{"peer-1": arch, …}`` (peer 1 largest).

    Every method with the same teacher and peer count trains these same architectures. With
    ``peers`` given, a file holding another number of students is refused. A file
    of another format version is refused: before version 2 the head counts were BO's arbitrary
    pick, and training them would silently differ from a fresh search.
    """
    rerun = "delete the file and rerun the search rule"
    result = read_json(path, rerun, missing="architecture-search result not found; run the search rule first")
    version = result.get("version")
    if version != SEARCH_VERSION:
        raise InputError(
            f"{path}: architecture-search result of format version {version}, this code reads version "
            f"{SEARCH_VERSION}; {rerun}"
        )
    try:
        students = {f"peer-{peer['peer']}": Architecture(**peer["arch"]) for peer in result["peers"]}
    except (ValueError, KeyError, TypeError) as error:  # InputError is a ValueError
        raise InputError(f"{path}: not a readable architecture-search result ({error}); {rerun}") from error
    if peers is not None and len(students) != peers:
        raise InputError(
            f"{path}: the search holds {len(students)} student(s), the run asks for {peers} peers; use a peer count "
            "the search ran for (search.peer_counts) or delete the file and rerun the search rule"
        )
    return students

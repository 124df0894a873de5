"""Where a configuration's files live, and the one description of every training method and run path.

**Results root.** Every file the workflow writes for one configuration lies under its root (config
key ``results_dir``), so two configurations with different roots (``config.yaml``: ``results``,
``config/demo.yaml``: ``results-demo``) never replan or overwrite each other's outputs, and deleting
the root removes one configuration's work::

    <root>/raw/<dataset>/               fetched datasets
    <root>/<corpus>/train/<run>/        trained runs; <root>/<corpus>/eval/<run>/<model>/ their results
    <root>/<corpus>/...                 cleaned corpus, tokenizer, shards
    <root>/search/, tables/, figures/, probe/
    <root>/checkpoints/<path>/          resumable trainer state of the run folder <root>/<path>
    <root>/logs/, <root>/benchmarks/    every job's log and timing

**Methods.** :data:`TRAITS` says, for every training method, what the workflow and the report need to
know about it: its label, whether it trains its peers together (its runs then carry α), whether it
distils from the teacher, whether it learns peer weights, and which config options it reads.
:mod:`babyteach.methods` holds how each method computes its loss (torch); a test checks that both
registries name the same methods and agree on what they share. Adding a method is one
:class:`~babyteach.methods.Method` subclass there and one :class:`MethodTraits` entry here
(docs/ARCHITECTURE.md, "Adding a method").

**Runs.** A run is one training job's folder under ``<corpus>/train``, in one of three shapes
(:data:`RUN_TEMPLATES`)::

    baseline/seed-<s>                            the teacher (RoBERTa-base), model ``teacher``
    <method>/peers-<p>/seed-<s>                  single-model methods, each peer on its own
    <method>/peers-<p>/alpha-<α>/seed-<s>        mutual methods, the peers together

    run = parse_run("dwml/peers-4/alpha-0.5/seed-1")   # Run("dwml", 4, 0.5, 1)
    run.name, run.group, run.models                     # the path back, without the seed, peer-1..4
    run_pattern()                                       # the regular expression of every run name

The templates are the only spelling of the grammar: a name is a template filled in, the regular
expressions (Snakemake's ``run`` wildcard constraint, the report's result-path parser) are the
templates with each field replaced by its pattern, and the training rules' outputs are the
templates themselves (Snakemake wildcards have the same ``{field}`` syntax).

Torch-free: the workflow reads it at start-up. Everything derived from :data:`TRAITS` is computed
when asked, so a method registered after import (tests/test_layout.py's toy methods) is seen.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from babyteach.errors import InputError

#: Folder of the resumable trainer state under a results root (outside every declared output,
#: because Snakemake deletes a failed job's outputs and the state must survive them).
CHECKPOINTS = "checkpoints"


def results_root(value: str) -> str:
    """The normalised results root of config key ``results_dir`` (relative to the working directory
    or absolute), e.g. ``"./results/"`` → ``"results"``.

    Snakemake matches output paths as strings, so every path is built from this one spelling. An
    empty value, the working directory itself (``.``, which would mix outputs with the working
    directory's own files) and braces (read as wildcards) raise :class:`InputError`.
    """
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"results_dir: {value!r} is not a folder name; use e.g. `results_dir: results`")
    if "{" in value or "}" in value:
        raise InputError(f"results_dir: {value!r} contains a brace, which Snakemake reads as a wildcard; rename it")
    root = posixpath.normpath(value.strip())
    if root == ".":
        raise InputError(
            f"results_dir: {value!r} is the working directory itself; name a folder under it, e.g. `results_dir: results`"
        )
    return root


def checkpoint_dir(root: str, run_dir: str) -> str:
    """The checkpoint folder of the run folder ``run_dir`` (a path under ``root``):
    ``<root>/checkpoints/<run_dir relative to root>``."""
    relative = PurePosixPath(run_dir).relative_to(root)
    return str(PurePosixPath(root) / CHECKPOINTS / relative)


# --- the methods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One config section a method reads options from: ``keys`` maps a config key to the option it
    sets (KD_DWML reads ``kd.tau`` as ``kd_tau``); ``None`` reads every key of the section under its
    own name, so a key added to the section (and the method's dataclass) needs no edit here."""

    name: str
    keys: Mapping[str, str] | None = None


@dataclass(frozen=True)
class MethodTraits:
    """What the workflow and the report know of one training method (its loss: :mod:`babyteach.methods`)."""

    #: The method's name in configs, run paths and :data:`babyteach.methods.METHODS`.
    name: str
    #: How tables and figures name it.
    label: str
    #: Trains all peers together with peer terms weighted by α: its runs carry ``alpha-<α>`` and its
    #: option ``alpha`` comes from the run, not the config (``mutual.alpha`` is the main runs' α).
    mutual: bool = False
    #: Distils from the trained teacher: its job reads the baseline run of the same seed.
    needs_teacher: bool = False
    #: Learns the peer weights ω in an outer step (``peer_weights.csv``, Figure 3).
    learns_weights: bool = False
    #: Its runs without a peer count train the teacher architecture (``baseline/seed-<s>``); exactly
    #: one method has it. Its peer runs are the students trained alone, not a row of the main comparison.
    trains_teacher: bool = False
    #: The config sections its options come from, in order (a later one wins a shared option).
    sections: tuple[Section, ...] = ()


#: Every training method, in the order the workflow plans them. The only place the workflow and the
#: report name them (:mod:`babyteach.methods` names them once more, for their losses).
TRAITS: dict[str, MethodTraits] = {
    traits.name: traits
    for traits in (
        MethodTraits("baseline", "RoBERTa-base", trains_teacher=True),
        MethodTraits("kd", "KD", needs_teacher=True, sections=(Section("kd"),)),
        MethodTraits("sd", "SD", sections=(Section("sd"),)),
        MethodTraits("dml", "DML", mutual=True, sections=(Section("mutual", {"alpha": "alpha", "tau": "tau"}),)),
        MethodTraits("dwml", "DWML", mutual=True, learns_weights=True, sections=(Section("mutual"),)),
        MethodTraits(
            "kd_dwml",
            "KD_DWML",
            mutual=True,
            needs_teacher=True,
            learns_weights=True,
            sections=(Section("mutual"), Section("kd", {"lam": "lam", "tau": "kd_tau"})),
        ),
    )
}

#: The order of the paper's tables and figures; a method not listed comes after these, in
#: :data:`TRAITS` order.
REPORT_ORDER: tuple[str, ...] = ("baseline", "sd", "kd", "dml", "kd_dwml", "dwml")

#: The paper's method, the one its ablations (peers, α) vary.
PAPER_METHOD = "dwml"


def traits(method: str) -> MethodTraits:
    """The traits of ``method``; InputError naming the known methods if there is no such method."""
    if method not in TRAITS:
        raise InputError(f"unknown training method {method!r}; known methods: {', '.join(TRAITS)}")
    return TRAITS[method]


def teacher_method() -> str:
    """The method whose peer-less runs train the teacher (``baseline``)."""
    (name,) = (t.name for t in TRAITS.values() if t.trains_teacher)
    return name


def student_methods() -> tuple[str, ...]:
    """The methods of the main comparison's students (every method but the teacher's), in report order."""
    return tuple(m for m in report_order() if not TRAITS[m].trains_teacher)


def planned_student_methods() -> tuple[str, ...]:
    """The same methods in :data:`TRAITS` order, the order the workflow plans their runs."""
    return tuple(m for m, t in TRAITS.items() if not t.trains_teacher)


def report_order() -> tuple[str, ...]:
    """Every method in the order of the tables and figures (:data:`REPORT_ORDER`, then the rest)."""
    return tuple(m for m in REPORT_ORDER if m in TRAITS) + tuple(m for m in TRAITS if m not in REPORT_ORDER)


def method_labels() -> dict[str, str]:
    """Method → its label, in report order (``baseline`` is the teacher, RoBERTa-base)."""
    return {m: TRAITS[m].label for m in report_order()}


def mutual_methods() -> tuple[str, ...]:
    """The methods whose runs carry α (their peers train together)."""
    return tuple(m for m, t in TRAITS.items() if t.mutual)


def teacher_methods() -> frozenset[str]:
    """The methods that distil from the teacher."""
    return frozenset(m for m, t in TRAITS.items() if t.needs_teacher)


def weight_learning_methods() -> tuple[str, ...]:
    """The methods that learn peer weights ω (Figure 3)."""
    return tuple(m for m, t in TRAITS.items() if t.learns_weights)


def option_keys(method: str, config: Mapping[str, Any]) -> dict[str, str]:
    """Option → the config key it is read from (``"kd_tau"`` → ``"kd.tau"``) for ``method``: its
    sections' keys as ``config`` holds them. A missing section or key is an InputError naming it."""
    keys: dict[str, str] = {}
    for section in traits(method).sections:
        values = config.get(section.name)
        if not isinstance(values, Mapping):
            raise InputError(f"{section.name}: the config has no section {section.name!r}; method {method!r} reads it")
        for key, option in (section.keys if section.keys is not None else {key: key for key in values}).items():
            if key not in values:
                raise InputError(f"{section.name}.{key}: missing from the config; method {method!r} reads it")
            keys[option] = f"{section.name}.{key}"
    return keys


def method_options(method: str, config: Mapping[str, Any], alpha: float | str | None = None) -> dict[str, Any]:
    """The options (hyperparameters) of one run of ``method``, read from its config sections
    (:func:`option_keys`), with the run's ``alpha`` for a mutual method.

    Only the keys a method reads are passed, so a change of another key (DWML's outer-step options
    for DML) never reruns its jobs.
    """
    options: dict[str, Any] = {}
    for option, key in option_keys(method, config).items():
        section, name = key.split(".", 1)
        options[option] = config[section][name]
    if traits(method).mutual:
        if alpha is None:
            raise InputError(f"method {method!r} trains its peers together: its run needs an alpha")
        options["alpha"] = float(alpha)
    return options


# --- the runs ------------------------------------------------------------------------------------

#: The three shapes of a run name under ``<corpus>/train``: the teacher, a single-model method's peers,
#: a mutual method's peers. Fields in braces (Snakemake's wildcard syntax too).
RUN_TEMPLATES: dict[str, str] = {
    "teacher": "{method}/seed-{seed}",
    "single": "{method}/peers-{peers}/seed-{seed}",
    "mutual": "{method}/peers-{peers}/alpha-{alpha}/seed-{seed}",
}

#: The model folders of a run: the teacher run's one model, else one per peer (``peer-1`` is the largest).
TEACHER_MODEL = "teacher"
PEER_MODEL = "peer-{i}"

#: The patterns of the run fields but the method (also the Snakemake wildcard constraints); α is
#: written with ``:g`` (``0.5``, ``1``), a 0 or a 1 with decimals.
FIELD_PATTERNS: dict[str, str] = {"peers": r"\d+", "seed": r"\d+", "alpha": r"(?:0|1)(?:\.\d+)?"}

#: The model wildcard: ``teacher`` or ``peer-<i>``.
MODEL_PATTERN = re.escape(TEACHER_MODEL) + "|" + PEER_MODEL.replace("{i}", r"\d+")


def shape_methods(shape: str) -> tuple[str, ...]:
    """The methods whose runs take ``shape`` (:data:`RUN_TEMPLATES`), in :data:`TRAITS` order."""
    if shape == "teacher":
        return (teacher_method(),)
    if shape not in RUN_TEMPLATES:
        raise ValueError(f"unknown run shape {shape!r}; shapes: {', '.join(RUN_TEMPLATES)}")
    return tuple(m for m, t in TRAITS.items() if t.mutual == (shape == "mutual"))


def method_pattern(shape: str) -> str:
    """The regular expression of the methods of ``shape`` (the training rules' ``method`` constraint)."""
    return "|".join(re.escape(m) for m in shape_methods(shape))


def run_template(shape: str) -> str:
    """The run name of ``shape`` as a Snakemake wildcard pattern; the teacher's method is filled in
    (``baseline/seed-{seed}``), the others keep ``{method}`` (constrained by :func:`method_pattern`)."""
    template = RUN_TEMPLATES[shape]
    return template.replace("{method}", teacher_method()) if shape == "teacher" else template


def _shape_regex(shape: str, named: bool) -> str:
    """``shape``'s template as a regular expression, each field a group (named, or not)."""
    patterns = {"method": method_pattern(shape), **FIELD_PATTERNS}
    parts = re.split(r"\{(\w+)\}", RUN_TEMPLATES[shape])  # literal, field, literal, field, …, literal
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P<{part}>{patterns[part]})" if named else f"(?:{patterns[part]})"
    return regex


def run_pattern() -> str:
    """The regular expression of every run name (no groups of its own to name: it nests in others)."""
    return "|".join(_shape_regex(shape, named=False) for shape in RUN_TEMPLATES)


@dataclass(frozen=True, order=True)
class Run:
    """One training run: its method, peer count (None: the teacher run), α (mutual methods only), seed."""

    method: str
    peers: int | None
    alpha: float | None
    seed: int

    def __post_init__(self) -> None:
        method_traits = traits(self.method)
        if self.peers is None and not method_traits.trains_teacher:
            raise InputError(f"a run of method {self.method!r} needs a peer count")
        if (self.alpha is None) == method_traits.mutual:
            has = "needs an alpha" if method_traits.mutual else "has no alpha"
            raise InputError(f"a run of method {self.method!r} {has}")

    @property
    def shape(self) -> str:
        """Which of :data:`RUN_TEMPLATES` the run's name takes."""
        if self.peers is None:
            return "teacher"
        return "mutual" if self.alpha is not None else "single"

    @property
    def is_teacher(self) -> bool:
        """Whether this is the teacher's run (``baseline/seed-<s>``, not ``baseline/peers-<p>/...``)."""
        return self.shape == "teacher"

    @property
    def name(self) -> str:
        """The run folder under ``<corpus>/train``, e.g. ``dwml/peers-4/alpha-0.5/seed-1``."""
        return RUN_TEMPLATES[self.shape].format(**self._fields())

    @property
    def group(self) -> str:
        """The run without its seed (what seeds are averaged over), e.g. ``dwml/peers-4/alpha-0.5``."""
        return RUN_TEMPLATES[self.shape].removesuffix("/seed-{seed}").format(**self._fields())

    @property
    def models(self) -> tuple[str, ...]:
        """The saved models of the run: ``teacher``, or ``peer-1`` .. ``peer-<peers>``."""
        if self.is_teacher:
            return (TEACHER_MODEL,)
        return tuple(PEER_MODEL.format(i=i) for i in range(1, self.peers + 1))

    def _fields(self) -> dict[str, Any]:
        alpha = None if self.alpha is None else f"{self.alpha:g}"
        return {"method": self.method, "peers": self.peers, "alpha": alpha, "seed": self.seed}


def parse_run(name: str) -> Run:
    """The :class:`Run` of a run name (the inverse of :attr:`Run.name`); InputError if it is none."""
    for shape in RUN_TEMPLATES:
        match = re.fullmatch(_shape_regex(shape, named=True), name)
        if match:
            fields = match.groupdict()
            peers, alpha = fields.get("peers"), fields.get("alpha")
            return Run(
                fields["method"],
                None if peers is None else int(peers),
                None if alpha is None else float(alpha),
                int(fields["seed"]),
            )
    examples = ", ".join(RUN_TEMPLATES.values())
    raise InputError(f"{name!r} is not a run name of the workflow ({examples}; methods: {', '.join(TRAITS)})")


def teacher_run(seed: int) -> Run:
    """The teacher's run of ``seed`` (KD and KD_DWML distil from the one of their own seed)."""
    return Run(teacher_method(), None, None, seed)

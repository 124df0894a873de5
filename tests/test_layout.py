"""babyteach.layout: the method traits agree with the method registry, and the run-path grammar goes
both ways (name ↔ Run) with the regular expressions derived from it."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import ClassVar

import pytest
import yaml

from babyteach import layout
from babyteach.errors import InputError
from babyteach.layout import Run, parse_run, run_pattern
from conftest import REPO
from toy_methods import PRELUDE, TOY_TRAITS
from train_helpers import BLOCK, TINY, config, run
from workflow_helpers import run_snakemake

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def schema_defaults() -> dict:
    """Every section of the config schema with its keys at their schema defaults."""
    return {
        name: {key: spec.get("default") for key, spec in section.get("properties", {}).items()}
        for name, section in SCHEMA["properties"].items()
        if section.get("type") == "object"
    }


# --- the traits against babyteach.methods -------------------------------------------------------


def assert_registries_agree() -> None:
    """babyteach.layout's traits and babyteach.methods' registry name the same methods and agree on what
    both say; the options the workflow passes are exactly the method's dataclass fields, and the
    schema's defaults are valid values of them."""
    from babyteach.methods import METHODS, make_method

    assert set(layout.TRAITS) == set(METHODS)
    config = schema_defaults()
    for name, traits in layout.TRAITS.items():
        cls = METHODS[name]
        assert traits.name == cls.name == name
        assert traits.needs_teacher == cls.needs_teacher, name
        assert traits.learns_weights == cls.has_outer_step, name
        hyperparameters = {f.name for f in fields(cls) if f.init}
        # has hyperparameters iff it reads a config section; reads exactly its dataclass's fields
        assert bool(hyperparameters) == bool(traits.sections), name
        options = layout.method_options(name, config, alpha=0.5 if traits.mutual else None)
        assert set(options) == hyperparameters, name
        # each option read from the key its field holds (config_field's config_key)
        keys = layout.option_keys(name, config)
        assert {f.name: f.metadata.get("config_key") for f in fields(cls) if f.init} == keys, name
        assert traits.mutual == ("alpha" in hyperparameters), name
        make_method(name, **options)


def test_the_traits_and_the_method_registry_name_the_same_methods_and_agree():
    assert_registries_agree()


def test_exactly_one_method_trains_the_teacher_and_labels_are_unique():
    assert layout.teacher_method() == "baseline"
    labels = list(layout.method_labels().values())
    assert len(set(labels)) == len(labels) == len(layout.TRAITS)
    assert set(layout.REPORT_ORDER) <= set(layout.TRAITS)
    assert layout.student_methods() == ("sd", "kd", "dml", "kd_dwml", "dwml")  # the paper's table order
    assert layout.mutual_methods() == ("dml", "dwml", "kd_dwml")
    assert layout.teacher_methods() == {"kd", "kd_dwml"}
    assert layout.weight_learning_methods() == ("dwml", "kd_dwml")


def test_method_options_read_only_the_keys_a_method_reads_and_alpha_from_the_run():
    config = {
        "kd": {"lam": 0.4, "tau": 3.0},
        "sd": {"lam": 0.1, "tau": 3.0, "mu": 0.0},
        "mutual": {"alpha": 0.5, "tau": 1.5, "eta0": 0.2},
    }
    assert layout.method_options("baseline", config) == {}
    assert layout.method_options("kd", config) == {"lam": 0.4, "tau": 3.0}
    # DML reads alpha and tau only: a change of DWML's eta0 leaves its jobs alone
    assert layout.method_options("dml", config, alpha="0.3") == {"alpha": 0.3, "tau": 1.5}
    assert layout.method_options("dwml", config, alpha=0.7) == {"alpha": 0.7, "tau": 1.5, "eta0": 0.2}
    # KD_DWML: the mutual section, and the kd section's tau under another name
    assert layout.method_options("kd_dwml", config, alpha=0.5) == {
        "alpha": 0.5,
        "tau": 1.5,
        "eta0": 0.2,
        "lam": 0.4,
        "kd_tau": 3.0,
    }
    with pytest.raises(InputError, match="needs an alpha"):
        layout.method_options("dwml", config)
    with pytest.raises(InputError, match=r"kd\.tau: missing"):
        layout.method_options("kd_dwml", {**config, "kd": {"lam": 0.4}}, alpha=0.5)
    with pytest.raises(InputError, match="no section 'sd'"):
        layout.method_options("sd", {"kd": {}})
    with pytest.raises(InputError, match="unknown training method 'nope'; known methods: baseline, kd"):
        layout.method_options("nope", config)


# --- the run-path grammar ----------------------------------------------------------------------

NAMES = {  # name → its run, written out by hand
    "baseline/seed-0": Run("baseline", None, None, 0),
    "baseline/peers-2/seed-1": Run("baseline", 2, None, 1),
    "kd/peers-4/seed-2": Run("kd", 4, None, 2),
    "sd/peers-10/seed-13": Run("sd", 10, None, 13),
    "dml/peers-4/alpha-0.5/seed-0": Run("dml", 4, 0.5, 0),
    "dwml/peers-1/alpha-1/seed-0": Run("dwml", 1, 1.0, 0),
    "kd_dwml/peers-4/alpha-0.25/seed-3": Run("kd_dwml", 4, 0.25, 3),
}

NOT_RUNS = [
    "kd/seed-0",  # only the teacher's runs have no peer count
    "baseline/peers-2/alpha-0.5/seed-0",  # baseline has no alpha
    "dwml/peers-4/seed-0",  # a mutual method needs one
    "dwml/peers-4/alpha-2/seed-0",  # alpha is 0 or 1 with decimals
    "dwml/peers-4/alpha-0.5/seed-x",
    "toy/peers-2/seed-0",  # not a method
    "baseline/seed-0/teacher",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_run_name_parses_to_its_run_and_back(name):
    run = parse_run(name)
    assert run == NAMES[name]
    assert run.name == name
    assert re.fullmatch(run_pattern(), name)


@pytest.mark.parametrize("name", NOT_RUNS)
def test_what_is_not_a_run_name_matches_nothing(name):
    assert not re.fullmatch(run_pattern(), name)
    with pytest.raises(InputError, match="is not a run name"):
        parse_run(name)


def test_group_models_and_shape_of_each_kind_of_run():
    teacher, alone, mutual = Run("baseline", None, None, 0), Run("baseline", 3, None, 0), Run("dwml", 2, 0.5, 1)
    assert (teacher.group, alone.group, mutual.group) == ("baseline", "baseline/peers-3", "dwml/peers-2/alpha-0.5")
    assert teacher.models == ("teacher",) and teacher.is_teacher
    assert alone.models == ("peer-1", "peer-2", "peer-3") and not alone.is_teacher
    assert mutual.models == ("peer-1", "peer-2")
    assert layout.teacher_run(4).name == "baseline/seed-4"
    assert all(re.fullmatch(layout.MODEL_PATTERN, m) for m in (*teacher.models, *alone.models))
    assert not re.fullmatch(layout.MODEL_PATTERN, "peer-x")


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (("kd", None, None, 0), "needs a peer count"),
        (("dml", 2, None, 0), "needs an alpha"),
        (("sd", 2, 0.5, 0), "has no alpha"),
        (("toy", 2, None, 0), "unknown training method"),
    ],
)
def test_a_run_outside_the_grammar_cannot_be_built(run, message):
    with pytest.raises(InputError, match=message):
        Run(*run)


def test_the_training_rules_paths_are_the_templates_with_the_teacher_filled_in():
    assert layout.run_template("teacher") == "baseline/seed-{seed}"
    assert layout.run_template("single") == "{method}/peers-{peers}/seed-{seed}"
    assert layout.run_template("mutual") == "{method}/peers-{peers}/alpha-{alpha}/seed-{seed}"
    assert layout.method_pattern("single") == "baseline|kd|sd"
    assert layout.method_pattern("mutual") == "dml|dwml|kd_dwml"


def test_the_layout_and_the_report_inputs_import_without_torch():
    """workflow/rules/common.smk imports both at every start-up, dry runs included."""
    import subprocess
    import sys

    code = "import sys, babyteach.layout, babyteach.report.inputs; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- adding a method is one class plus one entry ---------------------------------------------


def toy_classes() -> tuple[type, ...]:
    """The classes of tests/toy_methods.py's methods (their losses), as a method's author writes them."""
    from babyteach.config_schema import config_field
    from babyteach.losses import cross_entropy, kd_loss
    from babyteach.methods import DML, Method

    @dataclass(frozen=True)
    class Toy(Method):
        """Half the MLM loss, for each peer on its own."""

        name: ClassVar[str] = "toy"

        def step_loss(self, ctx):
            return {name: 0.5 * cross_entropy(ctx.student_logits(name), ctx.batch.targets) for name in ctx.students}

    @dataclass(frozen=True)
    class ToyMutual(DML):
        """DML whose supervised term is KD against the teacher at the peer temperature."""

        name: ClassVar[str] = "toy_mutual"
        needs_teacher: ClassVar[bool] = True
        lam: float = config_field("kd", "lam")

        def supervised_losses(self, ctx, logits):
            teacher = ctx.teacher_targets(self.tau)
            return [kd_loss(z, teacher, ctx.batch.targets, self.lam, self.tau) for z in logits]

    return Toy, ToyMutual


@pytest.fixture
def toy_methods(monkeypatch):
    """The toy methods registered in both registries (one class and one entry each), for this test."""
    from babyteach import methods

    for traits in TOY_TRAITS:
        monkeypatch.setitem(layout.TRAITS, traits.name, traits)
    for cls in toy_classes():
        monkeypatch.setitem(methods.METHODS, cls.name, cls)


def test_a_registered_method_is_planned_and_read_by_the_tables(toy_methods):
    from babyteach.report.inputs import Plan

    assert_registries_agree()
    assert layout.student_methods()[-2:] == ("toy", "toy_mutual")  # after the paper's methods
    plan = Plan(yaml.safe_load((REPO / "config.yaml").read_text()) | {"seeds": [0]})
    assert {"toy/peers-4/seed-0", "toy_mutual/peers-4/alpha-0.5/seed-0"} <= set(plan.main_runs())
    table2 = plan.table_inputs("table2")["eval"]
    for name in ("toy/peers-4/seed-0", "toy_mutual/peers-4/alpha-0.5/seed-0"):
        assert f"results/2024-10M/eval/{name}/peer-4/blimp-filtered.json" in table2
        assert f"results/2024-10M/train/{name}" in plan.table_inputs("table9")["runs"]
    assert not any("toy" in path for path in plan.figure_inputs("figure3")["peer_weights"])  # learns no ω
    # the report parses the new runs' result paths
    from babyteach.report.runs import parse_result_path

    result = parse_result_path("results/2024-10M/eval/toy_mutual/peers-4/alpha-0.5/seed-0/peer-3/ewok-fast.json")
    assert (result.run.group, result.model) == ("toy_mutual/peers-4/alpha-0.5", "peer-3")


def test_a_registered_method_trains_through_the_loop_unchanged(toy_methods, data, tmp_path):
    summary = run(data, tmp_path, "toy", {"peer-1": TINY}, config(token_budget=2 * 8 * BLOCK))
    assert summary["method"] == "toy" and summary["steps"] == 2


def test_a_registered_method_is_in_the_planned_dag(tmp_path, planning_mirror):
    """The DAG of a Snakemake process in which the toy methods' traits are registered: their runs are
    trained (the mutual one on the teacher of its seed, with the options it reads) and evaluated, and
    Table 2 reads their results."""
    plan = run_snakemake(
        tmp_path,
        "-n",
        "-p",
        "train",
        "table2",
        "--configfile",
        str(REPO / "config/demo.yaml"),
        "--config",
        f"data_mirror={planning_mirror}",
        prelude=PRELUDE,
    ).stdout
    from babyteach.dryrun import parse_dry_run, parse_train_command

    jobs = {output: job for job in parse_dry_run(plan) for output in job.outputs}
    root = "results-demo/2024-10M"
    toy = jobs[f"{root}/train/toy/peers-2/seed-0"]
    assert toy.rule == "train_students" and toy.wildcards["method"] == "toy"
    assert parse_train_command(toy.shell).settings["method_options"] == {}
    mutual = jobs[f"{root}/train/toy_mutual/peers-2/alpha-0.5/seed-0"]
    assert mutual.rule == "train_mutual" and f"{root}/train/baseline/seed-0" in mutual.inputs
    command = parse_train_command(mutual.shell)
    # mutual.alpha, mutual.tau and kd.lam, as its traits say
    assert command.settings["method_options"] == {"alpha": 0.5, "tau": 1.0, "lam": 0.5}
    assert command.job["teacher_run"] == f"{root}/train/baseline/seed-0"
    for name in ("toy/peers-2/seed-0", "toy_mutual/peers-2/alpha-0.5/seed-0"):
        result = f"{root}/eval/{name}/peer-2/blimp-fast.json"
        assert jobs[result].rule == "evaluate_zero_shot"
        assert result in jobs["results-demo/tables/table2.tex"].inputs

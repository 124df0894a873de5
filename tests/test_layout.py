"""babyteach.layout: the method traits agree with the method registry, and the run-path grammar goes
both ways (name ↔ Run) with the regular expressions derived from it."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
import yaml

from conftest import REPO

from babyteach import layout
from babyteach.errors import InputError
from babyteach.layout import Run, parse_run, run_pattern

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def schema_defaults() -> dict:
    """Every section of the config schema with its keys at their schema defaults."""
    return {
        name: {key: spec.get("default") for key, spec in section.get("properties", {}).items()}
        for name, section in SCHEMA["properties"].items()
        if section.get("type") == "object"
    }


# --- the traits against babyteach.methods -------------------------------------------------------


def test_the_traits_and_the_method_registry_name_the_same_methods_and_agree():
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
        assert traits.mutual == ("alpha" in hyperparameters), name
        make_method(name, **options)  # the schema's defaults are valid options of the method


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
        "alpha": 0.5, "tau": 1.5, "eta0": 0.2, "lam": 0.4, "kd_tau": 3.0,
    }  # fmt: skip
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


@pytest.mark.parametrize(("run", "message"), [
    (("kd", None, None, 0), "needs a peer count"),
    (("dml", 2, None, 0), "needs an alpha"),
    (("sd", 2, 0.5, 0), "has no alpha"),
    (("toy", 2, None, 0), "unknown training method"),
])  # fmt: skip
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

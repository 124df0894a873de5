"""The recipe probe: its settings."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from babyteach.errors import InputError
from babyteach.probe import probe_runs, setting_name

#: config.yaml's training section: every key the schema knows, as the workflow passes it.
TRAINING = yaml.safe_load((REPO / "config.yaml").read_text())["training"]


# --- settings -------------------------------------------------------------------------------------


def test_a_setting_is_named_after_its_values_in_key_order():
    assert setting_name({"lr": 0.0001}) == "lr-0.0001"
    assert setting_name({"warmup_fraction": 0.1, "lr": 5e-4}) == "lr-0.0005_warmup_fraction-0.1"
    assert setting_name({"lr": 1e-05, "clip_norm": None, "compile": True}) == "clip_norm-null_compile-true_lr-1e-05"
    assert setting_name({"batch_size": 64}) == "batch_size-64"
    assert setting_name({}) == "base"


def test_a_setting_overrides_the_training_section_for_the_probe_budget():
    runs = probe_runs([{"lr": 1e-4}, {"lr": 5e-4, "warmup_fraction": 0.1}, {}], TRAINING, 4096, 128)
    assert list(runs) == ["lr-0.0001", "lr-0.0005_warmup_fraction-0.1", "base"]  # the configured order
    first = runs["lr-0.0001"]
    assert first["lr"] == 1e-4 and first["warmup_fraction"] == TRAINING["warmup_fraction"]
    assert runs["lr-0.0005_warmup_fraction-0.1"]["warmup_fraction"] == 0.1
    assert runs["base"]["lr"] == TRAINING["lr"]
    for values in runs.values():
        assert values["token_budget"] == 4096 and values["epochs"] is None
        assert not {"eval_every", "log_every", "checkpoint_every"} & set(values)  # cadence: untracked job keys
        assert values["batch_size"] == TRAINING["batch_size"] and values["dev_blocks"] == TRAINING["dev_blocks"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ([{"lr": 1e-4}, {"lrr": 1e-4}], "probe.settings[1].lrr: not a training key"),
        ([{"epochs": 2}], "probe.settings[0].epochs: a probe setting cannot set"),
        ([{"eval_every": 5}], "probe.settings[0].eval_every: a probe setting cannot set"),
        ([{"dev_blocks": 8}], "probe.settings[0].dev_blocks: a probe setting cannot set"),
        ([{"lr": -1.0}], "probe.settings[0].lr: must be positive"),
        ([{"lr": "fast"}], "probe.settings[0].lr: must be a number"),
        ([{"warmup_fraction": 1.5}], "probe.settings[0].warmup_fraction: must be in [0, 1)"),
        ([{"lr": 1e-4}, {"lr": 0.0001}], "probe.settings[1]: trains the same run as probe.settings[0]"),
        ([{}, {"lr": TRAINING["lr"]}], "probe.settings[1]: trains the same run as probe.settings[0]"),
        ([0.001], "probe.settings[0]: must be a mapping"),
        ([{"precision": "b/f16"}], "probe.settings[0].precision"),
        ([], "probe.settings: give at least one"),
    ],
)
def test_a_bad_setting_is_named(settings, named):
    with pytest.raises(InputError) as error:
        probe_runs(settings, TRAINING, 4096, 128)
    assert named in str(error.value)

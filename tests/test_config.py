"""Configuration: every key described and defaulted, bad keys and types fail at start-up."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO
from workflow_helpers import run_snakemake

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def _walk_properties(schema: dict, prefix: str = ""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{prefix}{key}", sub
        yield from _walk_properties(sub, f"{prefix}{key}.")


def test_every_schema_key_has_description_and_default():
    keys = list(_walk_properties(SCHEMA))
    assert len(keys) > 10
    missing = [k for k, sub in keys if "description" not in sub or "default" not in sub]
    assert missing == []


def test_every_object_rejects_unknown_keys():
    objects = [k for k, sub in _walk_properties(SCHEMA) if sub.get("type") == "object"]
    assert SCHEMA["additionalProperties"] is False
    assert all(sub.get("additionalProperties") is False for k, sub in _walk_properties(SCHEMA) if k in objects)


def test_every_config_yaml_key_is_commented():
    lines = (REPO / "config.yaml").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z_]+:", line):
            commented_here = "#" in line
            commented_above = i > 0 and lines[i - 1].lstrip().startswith("#")
            is_section = line.rstrip().endswith(":")
            if not (commented_here or commented_above or is_section):
                uncommented.append(line)
    assert uncommented == []


@pytest.mark.parametrize("configfile", [None, "config/demo.yaml", "config/track-100M.yaml"])
def test_dry_run_plans_the_whole_dag(tmp_path, configfile, planning_mirror):
    args = ["-n", "all"] + (["--configfile", str(REPO / configfile)] if configfile else [])
    result = run_snakemake(tmp_path, *args, "--config", f"data_mirror={planning_mirror}")
    for rule in ("fetch_data", "clean_corpus", "train_tokenizer", "tokenize_corpus", "search_architectures",
                 "train_baseline", "train_students", "train_mutual", "evaluate_zero_shot",
                 "evaluate_finetune", "table", "figure"):
        assert rule in result.stdout
    assert "rule train_probe" not in result.stdout  # the recipe probe is a tuning tool, not part of all


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"tokenizer": {"vocab_size": "big"}}, "vocab_size"),
        ({"corpus": {"track": "1B"}}, "track"),
        ({"tokenizr": {"vocab_size": 100}}, "tokenizr"),
        ({"download": {"retries": 0}}, "retries"),
        ({"evaluation_data": ["blimp-typo"]}, "evaluation_data"),
        ({"training": {"token_budget": 1000}}, "exactly one of token_budget and epochs"),
        ({"training": {"eval_every": 0}}, "eval_every"),
        ({"kd": {"lam": 1.5}}, "lam"),
        ({"seeds": [-1]}, "seeds"),
        ({"mutual": {"alpha": 1.5}}, "alpha"),
        ({"mutual": {"weight_update_every": 0}}, "weight_update_every"),
        ({"mutual": {"hypergradient": "exact"}}, "hypergradient"),
        ({"ablations": {"alphas": [0.5, 2]}}, "alphas"),
        ({"report": {"table1_tracks": ["10M", "1B"]}}, "table1_tracks"),
        ({"report": {"table1_tracks": []}}, "table1_tracks"),
        ({"finetune": {"tasks": ["mnli-mm"]}}, "mnli"),
        ({"finetune": {"lr": 0}}, "lr"),
    ],
)
def test_bad_config_fails_at_start_up_naming_the_key(tmp_path, config, named):
    result = run_snakemake(tmp_path, "-n", config=config, check=False)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_ablation_targets_plan_their_points(tmp_path, data_mirror):
    # paper config: p in (1, 2, 4), alphas (0.3, 0.5, 0.7), seeds 0-2
    def trained(target: str) -> set[str]:
        result = run_snakemake(tmp_path, "-n", target, "--config", f"data_mirror={data_mirror}")
        return {line.split("train/", 1)[1] for line in result.stdout.splitlines()
                if "output: results/2024-10M/train/" in line and "train/baseline/seed-" not in line}

    assert trained("ablation_peers") == {f"dwml/peers-{p}/alpha-0.5/seed-{s}" for p in (1, 2, 4) for s in (0, 1, 2)}
    assert trained("ablation_alpha") == {f"dwml/peers-4/alpha-{a}/seed-{s}" for a in (0.3, 0.5, 0.7) for s in (0, 1, 2)}
    assert trained("ablation_weights") == {f"{m}/peers-4/alpha-0.5/seed-{s}" for m in ("dml", "dwml") for s in (0, 1, 2)}
    assert trained("ablation_size") == {run for s in (0, 1, 2)
                                        for run in (f"baseline/peers-4/seed-{s}", f"dwml/peers-4/alpha-0.5/seed-{s}")}

"""Configuration: every key described and defaulted, bad keys and types fail at start-up."""

from __future__ import annotations

import re
from typing import ClassVar  # at module level: dataclasses resolves a ClassVar annotation here

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
    for rule in (
        "fetch_data",
        "clean_corpus",
        "train_tokenizer",
        "tokenize_corpus",
        "search_architectures",
        "train_baseline",
        "train_students",
        "train_mutual",
        "evaluate_zero_shot",
        "evaluate_finetune",
        "table",
        "figure",
    ):
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
        ({"evaluation": {"variant": "pll"}}, "evaluation.variant: unknown key"),  # removed: both scorings always run
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
        return {
            line.split("train/", 1)[1]
            for line in result.stdout.splitlines()
            if "output: results/2024-10M/train/" in line and "train/baseline/seed-" not in line
        }

    assert trained("ablation_peers") == {f"dwml/peers-{p}/alpha-0.5/seed-{s}" for p in (1, 2, 4) for s in (0, 1, 2)}
    assert trained("ablation_alpha") == {f"dwml/peers-4/alpha-{a}/seed-{s}" for a in (0.3, 0.5, 0.7) for s in (0, 1, 2)}
    assert trained("ablation_weights") == {
        f"{m}/peers-4/alpha-0.5/seed-{s}" for m in ("dml", "dwml") for s in (0, 1, 2)
    }
    assert trained("ablation_size") == {
        run for s in (0, 1, 2) for run in (f"baseline/peers-4/seed-{s}", f"dwml/peers-4/alpha-0.5/seed-{s}")
    }


# --- short errors and numbers in any YAML spelling (babyteach.config_schema) -------------------------


def _dry_run_with(tmp_path, yaml_text: str, *targets: str):
    """``snakemake -n -p`` with ``yaml_text`` as a --configfile, written as a user would type it."""
    config_file = tmp_path / "mine.yaml"
    config_file.write_text(yaml_text)
    return run_snakemake(tmp_path / "work", "-n", "-p", *targets, "--configfile", str(config_file), check=False)


def test_a_typo_in_a_top_level_key_is_one_short_line(tmp_path):
    result = _dry_run_with(tmp_path, "tokenizr:\n  vocab_size: 100\n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert (
        "  tokenizr: unknown key; did you mean 'tokenizer'? valid keys of the top level: results_dir, data_mirror, "
        "download, corpus, tokenizer,"
    ) in output
    assert len(output.splitlines()) < 12  # not the schema and the config (1,347 lines before)
    assert "Failed validating" not in output and "description" not in output


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ("training:\n  lr: -1.0\n", "training.lr: -1.0 is not greater than 0; allowed: a number > 0"),
        ("training:\n  eval_every: 0\n", "training.eval_every: 0 is less than 1; allowed: an integer >= 1, or null"),
        ("corpus:\n  track: 1B\n", "corpus.track: '1B' is not a valid choice; allowed: one of '10M', '100M'"),
        ("seeds: [0, x]\n", "seeds[1]: 'x' is not an integer; allowed: an integer >= 0"),
        (
            "tokenizer:\n  vocab_size: 2.5e2.5\n",
            "tokenizer.vocab_size: '2.5e2.5' is not an integer; allowed: an integer >= 1",
        ),
        ("training:\n  batch_size: 2.5e-1\n", "training.batch_size: 0.25 is not an integer; allowed: an integer >= 1"),
        (
            "report:\n  table1_tracks: []\n",
            "report.table1_tracks: [] has fewer than 1 item; allowed: a list (at least "
            "1 item, no repeats), each one of '10M', '100M'",
        ),
        ("training:\n  lrr: 0.001\n", "training.lrr: unknown key; did you mean 'lr'? valid keys of training: epochs,"),
    ],
)
def test_config_errors_give_key_value_reason_and_what_is_allowed(tmp_path, yaml_text, line):
    result = _dry_run_with(tmp_path, yaml_text)
    assert result.returncode != 0
    assert f"\n  {line}" in result.stdout + result.stderr


def test_every_problem_is_listed_at_once(tmp_path):
    result = _dry_run_with(tmp_path, "training:\n  lr: -1.0\n  dropout: 2\ncorpus:\n  track: 1B\n")
    output = result.stdout + result.stderr
    assert "has 3 problems:\n  corpus.track: '1B'" in output
    assert (
        "\n  training.dropout: 2 is not less than 1; allowed: a number >= 0 and < 1" in output
        and "\n  training.lr: -1.0" in output
    )


def test_numbers_in_any_yaml_spelling_are_read_as_numbers(tmp_path):
    # PyYAML reads 1e-3, 4e5 and 5.0e4 as strings (YAML 1.1 wants a dot and a signed exponent)
    assert yaml.safe_load("a: 1e-3\nb: 4e5\nc: 5.0e4\nd: 5.0e-4") == {
        "a": "1e-3",
        "b": "4e5",
        "c": "5.0e4",
        "d": 0.0005,
    }
    result = _dry_run_with(
        tmp_path,
        "training:\n  lr: 1e-3\n  token_budget: 4e5\n  epochs: null\nmutual:\n  eta0: 5e-4\n",
        "results/2024-10M/train/dwml/peers-4/alpha-0.5/seed-0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the training jobs get numbers: the same settings (and rerun trigger) as writing 0.001 and 400000
    assert '"lr": 0.001' in result.stdout and '"token_budget": 400000' in result.stdout
    assert '"eta0": 0.0005' in result.stdout


def test_as_number_and_coerce_numbers():
    from babyteach.config_schema import as_number, coerce_numbers

    assert as_number("1e-3") == 0.001 and as_number("-2.5E+2") == -250.0 and as_number("1_000") == 1000.0
    assert as_number("1e8", integer=True) == 100_000_000 and isinstance(as_number("1e8", integer=True), int)
    assert as_number(32.0, integer=True) == 32 and isinstance(as_number(32.0, integer=True), int)
    assert as_number("2.5e-1", integer=True) == 0.25 and as_number(1.5, integer=True) == 1.5  # not whole: a float
    for unchanged in ("abc", "inf", "nan", "1e", True, None, [1]):
        assert as_number(unchanged) == unchanged
    schema = {
        "properties": {
            "name": {"type": "string"},
            "lr": {"type": "number"},
            "seeds": {"type": "array", "items": {"type": "integer"}},
            "cap": {"type": ["integer", "null"]},
        }
    }
    config = {"name": "1e3", "lr": "1e-4", "seeds": ["1e1", 2.0], "cap": None, "other": "1e3"}
    assert coerce_numbers(config, schema) == {
        "name": "1e3",
        "lr": 0.0001,
        "seeds": [10, 2],
        "cap": None,
        "other": "1e3",
    }


def test_train_config_reads_numbers_as_text_and_names_the_value():
    from babyteach.errors import InputError
    from babyteach.train_config import TrainConfig

    cfg = TrainConfig(token_budget="1e6", lr="1e-3", batch_size=16.0)
    assert (cfg.token_budget, cfg.lr, cfg.batch_size) == (1_000_000, 0.001, 16)
    with pytest.raises(InputError, match=r"^training\.lr: must be positive and finite, got -0\.5$"):
        TrainConfig(token_budget=10, lr=-0.5)
    with pytest.raises(InputError, match=r"^training\.lr: must be a number, got 'fast'$"):
        TrainConfig(token_budget=10, lr="fast")


def test_a_probe_setting_with_a_number_as_text_trains_that_number():
    from babyteach.probe import probe_runs

    training = {"epochs": 1.0, "token_budget": None, "lr": 0.0001, "batch_size": 8}
    runs = probe_runs([{"lr": "5e-4"}, {"lr": 0.0001}], training, token_budget=1000, block_size=16)
    assert list(runs) == ["lr-0.0005", "lr-0.0001"] and runs["lr-0.0005"]["lr"] == 0.0005


# --- defaults in one place: the schema (babyteach.config_schema.config_field) -----------------------

#: Fields of the config dataclasses that hold no config key: RoBERTa's AdamW constants and where a library
#: caller trains (the workflow sets neither). Every other field must take its key's default from the schema.
NOT_CONFIG_KEYS = {
    ("TrainConfig", "adam_beta1"),
    ("TrainConfig", "adam_beta2"),
    ("TrainConfig", "adam_eps"),
    ("TrainConfig", "device"),
}


def _config_dataclasses():
    """(class name, default instance) of every dataclass the workflow fills from a config section."""
    from babyteach.evaluate.glue import FinetuneConfig
    from babyteach.methods import METHODS, make_method
    from babyteach.train_config import TrainConfig

    return [
        ("TrainConfig", TrainConfig()),
        ("FinetuneConfig", FinetuneConfig()),
        *((cls.__name__, make_method(name)) for name, cls in METHODS.items()),
    ]


def _schema_value(key: str):
    """The schema default of a key path as metadata["config_key"] spells it: "training.lr", "seeds[0]"."""
    value = SCHEMA
    for name, index in re.findall(r"(\w+)|\[(\d+)\]", key):
        value = value["properties"][name] if name else value["default"][int(index)]
    return value["default"] if isinstance(value, dict) and "default" in value else value


def test_every_config_dataclass_field_defaults_to_its_schema_key():
    from dataclasses import fields

    checked = set()
    for name, default in _config_dataclasses():
        for f in fields(default):
            if not f.init:
                continue
            key = f.metadata.get("config_key")
            if (name, f.name) in NOT_CONFIG_KEYS:
                assert key is None, f"{name}.{f.name} holds {key}: take it out of NOT_CONFIG_KEYS"
                continue
            assert key, f"{name}.{f.name} has a default of its own; make it config_field(<its schema key>)"
            expected = _schema_value(key)
            got = getattr(default, f.name)
            assert (list(got) if isinstance(got, tuple) else got) == expected, f"{name}.{f.name} vs {key}"
            checked.add(key)
    # and every key of the sections those classes read is held by a field (TrainConfig(**config["training"]))
    for section in ("training", "finetune", "kd", "sd", "mutual"):
        missing = {f"{section}.{key}" for key in SCHEMA["properties"][section]["properties"]} - checked
        assert not missing, f"schema keys no dataclass field holds: {sorted(missing)}"
    assert {"training.epochs", "training.eval_every", "model.block_size", "seeds[0]", "kd.tau"} <= checked


def test_schema_section_makes_each_bare_field_the_key_of_its_name():
    from dataclasses import dataclass, field, fields

    from babyteach.config_schema import schema_section

    @dataclass(frozen=True)
    @schema_section("kd")
    class Options:
        kind: ClassVar[str] = "options"  # left alone: not a field
        lam: float
        tau: float = 7.0  # a default of its own is kept
        extra: int = field(default=3)

    schema = SCHEMA["properties"]["kd"]["properties"]
    assert Options().lam == schema["lam"]["default"] and Options().tau == 7.0 and Options().extra == 3
    by_name = {f.name: f for f in fields(Options)}
    assert set(by_name) == {"lam", "tau", "extra"}
    assert by_name["lam"].metadata["config_key"] == "kd.lam"
    assert by_name["lam"].metadata["help"] == " ".join(schema["lam"]["description"].split())
    assert "config_key" not in by_name["tau"].metadata
    with pytest.raises(KeyError, match=r"kd\.mu"):  # a field the section lacks, named at import

        @schema_section("kd")
        class Wrong:
            mu: float


def test_value_lists_of_the_code_are_the_schema_s():
    from babyteach.bilevel import HYPERGRADIENT_MODES, INNER_PRODUCTS
    from babyteach.evaluate.glue import DEVICES
    from babyteach.evaluate.glue_tasks import TASKS
    from babyteach.train_config import PRECISIONS

    mutual, finetune = SCHEMA["properties"]["mutual"]["properties"], SCHEMA["properties"]["finetune"]["properties"]
    assert list(HYPERGRADIENT_MODES) == mutual["hypergradient"]["enum"]
    assert list(INNER_PRODUCTS) == mutual["inner_product"]["enum"]
    assert list(TASKS) == finetune["tasks"]["items"]["enum"]
    assert list(DEVICES) == finetune["device"]["enum"]
    assert list(PRECISIONS) == SCHEMA["properties"]["training"]["properties"]["precision"]["enum"]


def test_the_package_reads_the_workflow_schema_and_ships_it():
    import tomllib

    from babyteach.config_schema import SCHEMA_PATH

    assert SCHEMA_PATH.resolve() == (REPO / "workflow/schemas/config.schema.yaml").resolve()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert SCHEMA_PATH.name in package_data["babyteach"]


def test_a_budget_replaces_the_default_epochs_and_the_pair_stays_exclusive():
    from babyteach.errors import InputError
    from babyteach.train_config import TrainConfig

    default_epochs = SCHEMA["properties"]["training"]["properties"]["epochs"]["default"]
    assert (TrainConfig().epochs, TrainConfig().token_budget) == (default_epochs, None)
    assert (TrainConfig(token_budget=100).epochs, TrainConfig(token_budget=100).token_budget) == (None, 100)
    assert TrainConfig(epochs=2.5).epochs == 2.5
    for both_or_neither in (dict(token_budget=100, epochs=1.0), dict(epochs=None)):
        with pytest.raises(InputError, match="exactly one of token_budget and epochs"):
            TrainConfig(**both_or_neither)

"""The ``babyteach`` command runs single steps with the same functions as the rules."""

from __future__ import annotations

import json

import pytest

from babyteach.cli import _parser, main
from conftest import REPO


def test_fetch_then_clean_from_the_mirror(tmp_path, data_mirror):
    assert main(["fetch", "supplement-fast", str(tmp_path / "supp"), "--mirror", str(data_mirror)]) == 0
    manifest = json.loads((tmp_path / "supp/MANIFEST.json").read_text())
    assert sorted(f["path"] for f in manifest["files"]) == [
        "hypernym.jsonl",
        "qa_congruence_easy.jsonl",
        "qa_congruence_tricky.jsonl",
        "subject_aux_inversion.jsonl",
        "turn_taking.jsonl",
    ]


def test_bad_input_exits_2_with_the_problem_named(tmp_path, capsys):
    assert main(["fetch", "blimp-typo", str(tmp_path / "x")]) == 2
    assert "blimp-typo" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_readme_test_command_is_what_ci_runs():
    ci_command = (REPO / ".ci/run").read_text().strip().splitlines()[-1]
    assert ci_command.startswith("python3.11 -m venv")
    assert f"\n{ci_command}\n" in (REPO / "README.md").read_text()


def test_number_arguments_in_any_spelling(capsys):
    args = _parser().parse_args(["train-tokenizer", "clean", "tok", "--vocab-size", "5e2", "--min-frequency", "2"])
    assert args.vocab_size == 500 and isinstance(args.vocab_size, int)
    assert _parser().parse_args(["fetch", "blimp-fast", "x", "--timeout-s", "1e-1"]).timeout_s == 0.1
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["train-tokenizer", "clean", "tok", "--vocab-size", "5.5e0"])
    assert exited.value.code == 2
    assert "argument --vocab-size: '5.5e0' is not a whole number (e.g. 50000, 5e4 or 50_000)" in capsys.readouterr().err


def test_config_options_take_default_choices_and_help_from_the_schema():
    import yaml

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    held = {}
    for command, sub in commands.items():
        for action in sub._actions:
            if hasattr(action, "config_key"):
                held[(command, action.option_strings[0])] = action.config_key
                section, key = action.config_key.split(".")
                spec = schema["properties"][section]["properties"][key]
                assert action.default == spec["default"], action.config_key
                assert action.choices == spec.get("enum"), action.config_key
                assert action.config_key in action.help
    assert held == {
        ("fetch", "--retries"): "download.retries",
        ("fetch", "--timeout-s"): "download.timeout_s",
        ("clean", "--release"): "corpus.release",
        ("clean", "--on-decode-error"): "corpus.on_decode_error",
        ("clean", "--max-lines-per-file"): "corpus.max_lines_per_file",
        ("train-tokenizer", "--vocab-size"): "tokenizer.vocab_size",
        ("train-tokenizer", "--min-frequency"): "tokenizer.min_frequency",
        ("tokenize", "--batch-lines"): "shards.encode_batch_lines",
        ("evaluate-pairs", "--max-per-task"): "evaluation.max_per_task",
    }
    # parsed without options: the values a workflow run gets
    args = parser.parse_args(["clean", "raw", "clean", "stats.csv"])
    assert (args.release, args.on_decode_error, args.max_lines_per_file) == ("2024", "strict", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["clean", "raw", "clean", "stats.csv", "--release", "2025"])  # not in the schema's enum

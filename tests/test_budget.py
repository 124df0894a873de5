"""The GPU budget: throughput file, seconds per job by hand, transfers flagged, missing measurements named,
and the training command the rules print read back exactly (issue 13, item 5)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import time

import pytest

from babyteach.budget import (
    FinetuneJob,
    FinetuneMeasurement,
    JobCost,
    Lengths,
    MissingMeasurement,
    PairWork,
    ScoringJob,
    ScoringMeasurement,
    TaskWork,
    Throughput,
    TrainingJob,
    TrainingMeasurement,
    by_rule,
    finetune_cost,
    format_budget,
    parse_throughput,
    read_throughput,
    scoring_cost,
    throughput_to_dict,
    training_cost,
)
from babyteach.dryrun import job_stats, parse_dry_run, parse_train_command, plan_costs
from babyteach.errors import InputError
from babyteach.models import Architecture
from babyteach.search import SearchSpace, search_architectures, write_search
from conftest import REPO
from workflow_helpers import run_snakemake

BIG = Architecture(2, 2, 64)  # flops_per_token(BIG, 1000, 16, 0.15) = 675,686 (by hand below)
SMALL = Architecture(1, 1, 32)  # flops_per_token(SMALL, 1000, 16, 0.15) = 109,594


def measured(method="baseline", students=None, tokens_per_s=1000.0, compile=False, options=None):
    return TrainingMeasurement(
        method, students or {"teacher": BIG}, 8, 16, 1000, 0.15, compile, options or {}, tokens_per_s
    )


def throughput(training=(), scoring=(), finetune=()):
    return Throughput(
        "Test GPU", 1e15, "2026-12-01", "2.13", "abc1234", tuple(training), tuple(scoring), tuple(finetune)
    )


def training(method="baseline", students=None, tokens=1_000_000, compile=False, options=None):
    return TrainingJob(
        "train_x", "results/x", method, students or {"teacher": BIG}, tokens, 8, 16, 1000, 0.15, compile, options or {}
    )


# --- training ----------------------------------------------------------------------------------


def test_flops_per_token_by_hand():
    """6·(12·H²·L + (H² + V·H)·0.15) + 12·L·T·H, the numbers the hand-computed seconds below use."""
    assert measured().flops_per_token == round(6 * (12 * 64**2 * 2 + (64**2 + 1000 * 64) * 0.15) + 12 * 2 * 16 * 64)
    assert measured().flops_per_token == 675_686
    assert measured(students={"p": SMALL}).flops_per_token == 109_594


def test_training_seconds_of_the_measured_run_are_tokens_over_tokens_per_second():
    cost = training_cost(training(tokens=1_000_000), throughput([measured(tokens_per_s=1000.0)]))
    assert cost.seconds == pytest.approx(1000.0)  # 10⁶ tokens at 1,000 tokens/s: the MFU cancels out
    assert cost.notes == ()
    assert measured(tokens_per_s=1000.0).mfu(1e15) == pytest.approx(1000 * 675_686 / 1e15)


def test_a_smaller_student_costs_its_flops_at_the_transferred_mfu_and_says_so():
    cost = training_cost(training(students={"p": SMALL}), throughput([measured()]))
    assert cost.seconds == pytest.approx(1_000_000 * 109_594 / (1000 * 675_686))  # 162.2 s
    assert len(cost.notes) == 1 and "transferred" in cost.notes[0] and "L2-H2-D64" in cost.notes[0]


def test_dwml_of_one_peer_takes_the_four_peer_mfu_flagged_as_transferred():
    four = {f"peer-{i}": SMALL for i in range(1, 4)} | {"peer-4": BIG}
    table = throughput([measured("dwml", four, tokens_per_s=200.0), measured()])
    one = training_cost(training("dwml", {"peer-1": BIG}), table)
    mfu = 200.0 * (3 * 109_594 + 675_686) / 1e15
    assert one.seconds == pytest.approx(1_000_000 * 675_686 / (mfu * 1e15))
    assert "dwml MFU" in one.notes[0] and "transferred" in one.notes[0]
    same = training_cost(training("dwml", four), table)  # the measured students: nothing transferred
    assert same.notes == () and same.seconds == pytest.approx(1_000_000 / 200.0)


def test_a_differing_method_option_is_named_in_the_transfer():
    table = throughput([measured("dwml", options={"weight_update_every": 10})])
    cost = training_cost(training("dwml", options={"weight_update_every": 5, "alpha": 0.5}), table)
    assert "weight_update_every 10" in cost.notes[0]


def test_a_method_without_a_measurement_is_an_error_naming_it():
    with pytest.raises(MissingMeasurement, match=r"method 'kd' with compile false.*measured: baseline"):
        training_cost(training("kd"), throughput([measured()]))
    with pytest.raises(MissingMeasurement, match=r"method 'baseline' with compile true"):
        training_cost(training(compile=True), throughput([measured()]))


# --- zero-shot scoring -------------------------------------------------------------------------

COPY = 10  # every masked copy 10 tokens long in these tests


def copies(n, length=COPY):
    return Lengths(n, n * length, n * length**2)


def test_scoring_seconds_are_pairs_times_seconds_per_pair_scaled_by_forward_flops():
    table = throughput(scoring=[ScoringMeasurement(BIG, 1000, "blimp-fast", 100, 10.0)])

    def work(family, variants):  # the family: 10 copies per pair and variant
        return {"blimp-fast": PairWork(200, copies(2000 * len(variants)))}[family]

    same = scoring_cost(
        ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", BIG, 1000, PairWork(50, copies(500))), table, work
    )
    assert same.seconds == pytest.approx(5.0) and same.notes == ()  # 50 pairs at 0.1 s per pair
    # forward FLOPs per copy of 10 tokens, (6·12H²L·n + 12·L·H·n² + 6·(H² + V·H)) / 3, by hand:
    big = (589_824 * 10 + 1536 * 100 + 408_576) / 3
    small = (73_728 * 10 + 384 * 100 + 198_144) / 3
    smaller = scoring_cost(
        ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", SMALL, 1000, PairWork(50, copies(500))), table, work
    )
    assert smaller.seconds == pytest.approx(5.0 * small / big)


def test_another_family_takes_the_rate_scaled_by_its_copies_and_says_so():
    table = throughput(scoring=[ScoringMeasurement(BIG, 1000, "blimp-fast", 100, 10.0)])

    def work(family, variants):
        return {"blimp-fast": PairWork(200, copies(2000 * len(variants)))}[family]

    longer = PairWork(50, copies(500, length=20))  # EWoK-like: contexts double every copy
    cost = scoring_cost(ScoringJob("evaluate_zero_shot", "o.json", "ewok-fast", BIG, 1000, longer), table, work)
    per_copy = {n: (589_824 * n + 1536 * n * n + 408_576) / 3 for n in (10, 20)}
    assert cost.seconds == pytest.approx(5.0 * per_copy[20] / per_copy[10])
    assert "transferred from blimp-fast" in cost.notes[0] and "ewok-fast" in cost.notes[0]


def test_a_measured_run_counts_the_work_of_the_variants_it_scored():
    """A run that scored one variant did half the work of one that scored two: its rate is not doubled."""

    def work(family, variants):  # 10 copies per pair and variant
        return PairWork(200, copies(2000 * len(variants)))

    job = ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", BIG, 1000, PairWork(50, copies(1000)))  # both
    one = throughput(scoring=[ScoringMeasurement(BIG, 1000, "blimp-fast", 100, 10.0)])  # pll-word-l2r only
    both = throughput(scoring=[ScoringMeasurement(BIG, 1000, "blimp-fast", 100, 10.0, ("official", "pll-word-l2r"))])
    assert scoring_cost(job, one, work).seconds == pytest.approx(10.0)  # 50 pairs, twice the copies per pair
    assert scoring_cost(job, both, work).seconds == pytest.approx(5.0)
    assert parse_throughput(throughput_to_dict(both)) == both


def test_no_scoring_measurement_is_an_error():
    job = ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", BIG, 1000, PairWork(1, copies(1)))
    with pytest.raises(MissingMeasurement, match="scoring"):
        scoring_cost(job, throughput(), lambda family, variants: PairWork(1, copies(1)))


# --- fine-tuning -------------------------------------------------------------------------------


def test_finetune_seconds_are_examples_times_max_epochs_times_seconds_per_example_an_upper_bound():
    entry = FinetuneMeasurement(BIG, "mrpc", examples=100, epochs=1, max_length=128, seconds=20.0)
    per_example = Lengths(100, 1000, 10_000)  # 100 examples of 10 tokens, no validation in the measured run

    def work(m):
        return TaskWork("mrpc", per_example, Lengths())

    job = FinetuneJob(
        "evaluate_finetune", "glue.json", BIG, epochs=3, tasks=(TaskWork("mrpc", per_example.scaled(2), Lengths()),)
    )
    cost = finetune_cost(job, throughput(finetune=[entry]), work)
    assert cost.seconds == pytest.approx(200 * 3 * 0.2)  # 200 examples × 3 epochs × 0.2 s
    assert "upper bound" in cost.notes[0] and "max_epochs" in cost.notes[0]
    # forward+backward FLOPs per token at 10 tokens: 6·12H²L + 12·L·H·10 (no LM head)
    small = FinetuneJob(
        "evaluate_finetune", "glue.json", SMALL, 3, (TaskWork("mrpc", per_example.scaled(2), Lengths()),)
    )
    ratio = (73_728 + 384 * 10) / (589_824 + 1536 * 10)
    assert finetune_cost(small, throughput(finetune=[entry]), work).seconds == pytest.approx(120 * ratio)
    # an unmeasured task: the rate of mrpc, flagged; its validation passes (forward only) count a third
    rte = TaskWork("rte", per_example, per_example)
    both = FinetuneJob(
        "evaluate_finetune", "glue.json", BIG, 3, (TaskWork("mrpc", per_example.scaled(2), Lengths()), rte)
    )
    cost = finetune_cost(both, throughput(finetune=[entry]), work)
    assert cost.seconds == pytest.approx(120 + 3 * 100 * 0.2 * (1 + 1 / 3))
    assert any("rte transferred from mrpc" in n for n in cost.notes)


def test_no_finetune_measurement_is_an_error():
    job = FinetuneJob("evaluate_finetune", "glue.json", BIG, 1, ())
    with pytest.raises(MissingMeasurement, match="fine-tuning"):
        finetune_cost(job, throughput(), lambda m: None)


# --- the throughput file -----------------------------------------------------------------------


def test_the_throughput_file_round_trips(tmp_path):
    table = throughput(
        [measured("dwml", {"peer-1": BIG, "peer-2": SMALL}, options={"alpha": 0.5})],
        [ScoringMeasurement(BIG, 1000, "blimp-filtered", 59875, 55.0)],
        [FinetuneMeasurement(BIG, "mrpc", 3668, 1, 128, 20.0, valid_examples=408)],
    )
    path = tmp_path / "throughput.json"
    path.write_text(json.dumps(throughput_to_dict(table)))
    assert read_throughput(path) == table


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("peak_flops"), r"key 'peak_flops' missing"),
        (lambda d: d.update(format_version=2), r"format_version 2"),
        (
            lambda d: d["training"][0].update(tokens_per_s=True),
            r"training\[0\]\.tokens_per_s must be a positive number",
        ),
        (lambda d: d["training"][0].update(tokens_per_s=-1), r"training\[0\]\.tokens_per_s must be positive"),
        (lambda d: d["training"][0]["students"].update(p={"layers": 2}), r"training\[0\]\.students\.p"),
        (lambda d: d["scoring"][0].pop("family"), r"key 'scoring\[0\]\.family' missing"),
        (lambda d: d["scoring"][0].update(variants=["mean"]), r"scoring\[0\]\.variants must be distinct names"),
    ],
)
def test_a_bad_throughput_file_names_the_file_and_key(tmp_path, change, message):
    data = throughput_to_dict(throughput([measured()], [ScoringMeasurement(BIG, 1000, "blimp-fast", 10, 1.0)]))
    change(data)
    path = tmp_path / "throughput.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as error:
        read_throughput(path)
    assert str(path) in str(error.value) and "gpu_check.py" in str(error.value)
    path.write_text("{")
    with pytest.raises(InputError, match="not JSON"):
        read_throughput(path)


# --- reading the plan --------------------------------------------------------------------------

SETTINGS = {
    "block_size": 128,
    "method": "dwml",
    "method_options": {"alpha": 0.5, "tau": 1.0},
    "peers": 4,
    "seed": 0,
    "training": {"batch_size": 32, "epochs": 10, "token_budget": None, "compile": False},
}
JOB = {
    "cadence": {"log_every": 10},
    "checkpoint_dir": "checkpoints/it's here",
    "output": "results/2024-10M/train/x",
    "search": "results/search/peers-4.json",
    "shards": "results/2024-10M/shards",
    "tokenizer": "results/t",
}


def train_smk_command(launcher: str) -> str:
    """The shell command as train.smk writes it: "{params.launcher} -m babyteach.train_job {params.settings:q}
    {params.job:q} {log:q}", the params being common.smk's json.dumps(..., sort_keys=True)."""
    settings, job = json.dumps(SETTINGS, sort_keys=True), json.dumps(JOB, sort_keys=True)
    return f"{launcher} -m babyteach.train_job {shlex.quote(settings)} {shlex.quote(job)} {shlex.quote('logs/x y.log')}"


def dry_run_block(command: str) -> str:
    return f"""
[Mon Nov 30 03:53:20 2026]
rule train_mutual:
    input: results/2024-10M/shards, results/2024-10M/tokenizer, results/search/peers-4.json
    output: results/2024-10M/train/x
    log: logs/x y.log
    jobid: 16
    reason: Missing output files: results/2024-10M/train/x
    wildcards: corpus=2024-10M, method=dwml, peers=4, alpha=0.5, seed=0
    resources: tmpdir=/tmp, gpu=1, runtime=600, mem_mb=16000, mem=16 GB, mem_mib=15259
Shell command: {command}

[Mon Nov 30 03:53:20 2026]
localrule all:
    input: results/2024-10M/train/x
    jobid: 0
    reason: Input files updated by another job: results/2024-10M/train/x
    resources: tmpdir=/tmp
Shell command: None
"""


@pytest.mark.parametrize(
    "launcher", ["/usr/bin/python3.11", "'/opt/my env/python' -m torch.distributed.run --standalone --nproc_per_node 4"]
)
def test_the_printed_training_command_reads_back_to_its_json_arguments(launcher):
    jobs = parse_dry_run(dry_run_block(train_smk_command(launcher)))
    assert [j.rule for j in jobs] == ["train_mutual", "all"]
    train, target = jobs
    assert train.outputs == ("results/2024-10M/train/x",) and train.wildcards["alpha"] == "0.5"
    assert train.inputs[2] == "results/search/peers-4.json"
    command = parse_train_command(train.shell)
    assert (command.settings, command.job, command.log) == (SETTINGS, JOB, "logs/x y.log")
    assert target.shell is None and parse_train_command(target.shell) is None


def test_job_stats_are_read_from_the_printout():
    text = "Job stats:\njob                   count\n------------------  -------\ntrain_mutual 24\nall 1\ntotal 25\n"
    assert job_stats(text) == {"train_mutual": 24, "all": 1}


def test_the_table_marks_partial_rules_as_lower_bounds_and_names_what_is_missing():
    costs = [
        JobCost("train_baseline", "a", 3600.0),
        JobCost("train_students", "b", 1800.0),
        JobCost("train_students", "c", None, reason="no training measurement of method 'kd'"),
    ]
    assert [(b.rule, b.jobs, b.budgeted, b.seconds) for b in by_rule(costs)] == [
        ("train_baseline", 1, 1, 3600.0),
        ("train_students", 2, 1, 1800.0),
    ]
    text = format_budget({"1 seed": costs}, throughput(), "title")
    assert "| train_baseline | 1.00 h (1 job) |" in text
    assert "≥ 0.50 h (1 of 2 jobs budgeted)" in text and "≥ 1.50 h (2 of 3 jobs budgeted)" in text
    assert "train_students: no training measurement of method 'kd' [1 job]" in text


# --- one real dry-run --------------------------------------------------------------------------

MICRO = {
    "corpus": {"max_lines_per_file": 200},
    "tokenizer": {"vocab_size": 400},
    "model": {"block_size": 128, "teacher": {"layers": 2, "heads": 2, "hidden": 32}},
    "search": {
        "peer_counts": [2],
        "space": {"layers": [1, 2], "heads": [1, 2], "hidden": [8, 16, 24, 32]},
        "init_points": 2,
        "n_iter": 2,
    },
    "evaluation_data": ["ewok-fast", "glue-filtered"],
    "seeds": [0],
    "training": {"epochs": None, "token_budget": 4000, "batch_size": 4},
    "evaluation": {"max_per_task": 2},
    "finetune": {"tasks": ["mrpc", "rte"], "max_train_examples": 16, "max_eval_examples": 8, "max_epochs": 2},
    "ablations": {"alphas": [0.5]},
    "report": {"table1_tracks": ["10M"]},
}


def test_a_real_dry_run_is_budgeted_job_by_job(tmp_path, data_mirror):
    """The micro plan: every training job from its printed command and its real shards, every evaluation
    job from its model; KD (unmeasured) named as not budgeted, its students' evaluations still budgeted."""
    started = time.monotonic()
    config = {**MICRO, "data_mirror": str(data_mirror)}
    # the search rule's result, written here with its function: the rule's start-up (imports) takes 10 s
    space, teacher = MICRO["search"], Architecture(**MICRO["model"]["teacher"])
    write_search(
        tmp_path / "results/search/peers-2.json",
        search_architectures(
            teacher,
            2,
            SearchSpace(**space["space"]),
            MICRO["tokenizer"]["vocab_size"],
            MICRO["model"]["block_size"],
            space["init_points"],
            space["n_iter"],
            0,
            tolerance=0.15,
        ),
    )
    run_snakemake(tmp_path, "--cores", "2", "--workflow-profile", "none", "data", config=config)
    text = run_snakemake(tmp_path, "-n", "-p", "--workflow-profile", "none", "all", config=config).stdout
    jobs = parse_dry_run(text)
    assert {r: sum(1 for j in jobs if j.rule == r) for r in job_stats(text)} == job_stats(text)
    vocab = json.loads((tmp_path / "results/2024-10M/shards/meta.json").read_text())["vocab_size"]

    def run(method, tokens_per_s=1000.0):
        return TrainingMeasurement(method, {"teacher": teacher}, 4, 128, vocab, 0.15, False, {}, tokens_per_s)

    table = throughput(
        [run("baseline"), run("sd"), run("dml"), run("dwml"), run("kd_dwml")],
        [ScoringMeasurement(teacher, vocab, "ewok-fast", 100, 2.0)],
        [FinetuneMeasurement(teacher, "mrpc", 16, 1, 128, 3.0)],
    )
    costs, others = plan_costs(jobs, tmp_path, table, MICRO["evaluation"], MICRO["finetune"])
    by_output = {c.output: c for c in costs}
    baseline = by_output["results/2024-10M/train/baseline/seed-0"]
    assert baseline.seconds == pytest.approx(4000 // (4 * 128) * 4 * 128 / 1000.0)  # plan_steps: 7 steps, 3,584 tokens
    assert baseline.notes == ()
    dwml = by_output["results/2024-10M/train/dwml/peers-2/alpha-0.5/seed-0"]
    assert dwml.seconds > 0 and "transferred" in dwml.notes[0]
    kd = by_output["results/2024-10M/train/kd/peers-2/seed-0"]
    assert kd.seconds is None and "method 'kd'" in kd.reason
    assert by_output["results/2024-10M/eval/kd/peers-2/seed-0/peer-1/ewok-fast.json"].seconds > 0
    models = 1 + 2 * 6  # the teacher; 2 peers of baseline/peers-2, kd, sd, dml, dwml, kd_dwml
    assert sum(c.rule == "evaluate_zero_shot" and c.seconds > 0 for c in costs) == models
    tuned = [c for c in costs if c.rule == "evaluate_finetune"]
    assert len(tuned) == models and all(c.seconds > 0 for c in tuned)
    assert any("rte transferred from mrpc" in n for n in tuned[0].notes)
    assert others["figure"] == 5
    assert time.monotonic() - started < 40  # ~10 s on 2 loaded cores


def test_the_example_holds_the_issues_h200_figures():
    """bench/gpu_budget.py --example: issue 13's tokens/s give back the MFUs the issue reports."""
    spec = importlib.util.spec_from_file_location("gpu_budget", REPO / "bench" / "gpu_budget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    example = module.example_throughput()
    mfu = {(m.method, m.batch_size, m.compile): round(m.mfu(example.peak_flops), 3) for m in example.training}
    assert mfu == {
        ("baseline", 32, False): 0.061,
        ("baseline", 32, True): 0.061,
        ("baseline", 128, False): 0.187,
        ("dml", 32, False): 0.019,
        ("dwml", 32, False): 0.012,
    }
    assert [(s.family, s.pairs, s.seconds) for s in example.scoring] == [("blimp-fast", 13_400, 13.0)]
    assert example.finetune == () and parse_throughput(throughput_to_dict(example)) == example

"""The GPU budget: throughput file, seconds per job by hand, transfers flagged, missing measurements named
(issue 13, item 5)."""

from __future__ import annotations

import json

import pytest

from babyteach.budget import (
    FinetuneJob,
    FinetuneMeasurement,
    Lengths,
    MissingMeasurement,
    PairWork,
    ScoringJob,
    ScoringMeasurement,
    TaskWork,
    Throughput,
    TrainingJob,
    TrainingMeasurement,
    finetune_cost,
    parse_throughput,
    read_throughput,
    scoring_cost,
    throughput_to_dict,
    training_cost,
)
from babyteach.errors import InputError
from babyteach.models import Architecture

BIG = Architecture(2, 2, 64)  # flops_per_token(BIG, 1000, 16, 0.15) = 675,686 (by hand below)
SMALL = Architecture(1, 1, 32)  # flops_per_token(SMALL, 1000, 16, 0.15) = 109,594


def measured(method="baseline", students=None, tokens_per_s=1000.0, compile=False, options=None):
    return TrainingMeasurement(method, students or {"teacher": BIG}, 8, 16, 1000, 0.15, compile, options or {},
                               tokens_per_s)  # fmt: skip


def throughput(training=(), scoring=(), finetune=()):
    return Throughput("Test GPU", 1e15, "2026-12-01", "2.13", "abc1234", tuple(training), tuple(scoring), tuple(finetune))


def training(method="baseline", students=None, tokens=1_000_000, compile=False, options=None):
    return TrainingJob("train_x", "results/x", method, students or {"teacher": BIG}, tokens, 8, 16, 1000, 0.15, compile,
                       options or {})  # fmt: skip


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
    work = {"blimp-fast": PairWork(200, copies(2000))}.__getitem__  # the family: 10 copies per pair
    same = scoring_cost(ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", BIG, 1000, PairWork(50, copies(500))),
                        table, work)  # fmt: skip
    assert same.seconds == pytest.approx(5.0) and same.notes == ()  # 50 pairs at 0.1 s per pair
    # forward FLOPs per copy of 10 tokens, (6·12H²L·n + 12·L·H·n² + 6·(H² + V·H)) / 3, by hand:
    big = (589_824 * 10 + 1536 * 100 + 408_576) / 3
    small = (73_728 * 10 + 384 * 100 + 198_144) / 3
    smaller = scoring_cost(ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", SMALL, 1000,
                                      PairWork(50, copies(500))), table, work)  # fmt: skip
    assert smaller.seconds == pytest.approx(5.0 * small / big)


def test_another_family_takes_the_rate_scaled_by_its_copies_and_says_so():
    table = throughput(scoring=[ScoringMeasurement(BIG, 1000, "blimp-fast", 100, 10.0)])
    work = {"blimp-fast": PairWork(200, copies(2000))}.__getitem__
    longer = PairWork(50, copies(500, length=20))  # EWoK-like: contexts double every copy
    cost = scoring_cost(ScoringJob("evaluate_zero_shot", "o.json", "ewok-fast", BIG, 1000, longer), table, work)
    per_copy = {n: (589_824 * n + 1536 * n * n + 408_576) / 3 for n in (10, 20)}
    assert cost.seconds == pytest.approx(5.0 * per_copy[20] / per_copy[10])
    assert "transferred from blimp-fast" in cost.notes[0] and "ewok-fast" in cost.notes[0]


def test_no_scoring_measurement_is_an_error():
    job = ScoringJob("evaluate_zero_shot", "o.json", "blimp-fast", BIG, 1000, PairWork(1, copies(1)))
    with pytest.raises(MissingMeasurement, match="scoring"):
        scoring_cost(job, throughput(), lambda family: PairWork(1, copies(1)))


# --- fine-tuning -------------------------------------------------------------------------------


def test_finetune_seconds_are_examples_times_max_epochs_times_seconds_per_example_an_upper_bound():
    entry = FinetuneMeasurement(BIG, "mrpc", examples=100, epochs=1, max_length=128, seconds=20.0)
    per_example = Lengths(100, 1000, 10_000)  # 100 examples of 10 tokens, no validation in the measured run

    def work(m):
        return TaskWork("mrpc", per_example, Lengths())

    job = FinetuneJob("evaluate_finetune", "glue.json", BIG, epochs=3, tasks=(TaskWork("mrpc", per_example.scaled(2), Lengths()),))
    cost = finetune_cost(job, throughput(finetune=[entry]), work)
    assert cost.seconds == pytest.approx(200 * 3 * 0.2)  # 200 examples × 3 epochs × 0.2 s
    assert "upper bound" in cost.notes[0] and "max_epochs" in cost.notes[0]
    # forward+backward FLOPs per token at 10 tokens: 6·12H²L + 12·L·H·10 (no LM head)
    small = FinetuneJob("evaluate_finetune", "glue.json", SMALL, 3, (TaskWork("mrpc", per_example.scaled(2), Lengths()),))
    ratio = (73_728 + 384 * 10) / (589_824 + 1536 * 10)
    assert finetune_cost(small, throughput(finetune=[entry]), work).seconds == pytest.approx(120 * ratio)
    # an unmeasured task: the rate of mrpc, flagged; its validation passes (forward only) count a third
    rte = TaskWork("rte", per_example, per_example)
    both = FinetuneJob("evaluate_finetune", "glue.json", BIG, 3, (TaskWork("mrpc", per_example.scaled(2), Lengths()), rte))
    cost = finetune_cost(both, throughput(finetune=[entry]), work)
    assert cost.seconds == pytest.approx(120 + 3 * 100 * 0.2 * (1 + 1 / 3))
    assert any("rte transferred from mrpc" in n for n in cost.notes)


def test_no_finetune_measurement_is_an_error():
    job = FinetuneJob("evaluate_finetune", "glue.json", BIG, 1, ())
    with pytest.raises(MissingMeasurement, match="fine-tuning"):
        finetune_cost(job, throughput(), lambda m: None)


# --- the throughput file -----------------------------------------------------------------------


def test_the_throughput_file_round_trips(tmp_path):
    table = throughput([measured("dwml", {"peer-1": BIG, "peer-2": SMALL}, options={"alpha": 0.5})],
                       [ScoringMeasurement(BIG, 1000, "blimp-filtered", 59875, 55.0)],
                       [FinetuneMeasurement(BIG, "mrpc", 3668, 1, 128, 20.0, valid_examples=408)])  # fmt: skip
    path = tmp_path / "throughput.json"
    path.write_text(json.dumps(throughput_to_dict(table)))
    assert read_throughput(path) == table


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("peak_flops"), r"key 'peak_flops' missing"),
        (lambda d: d.update(format_version=2), r"format_version 2"),
        (lambda d: d["training"][0].update(tokens_per_s=True), r"training\[0\]\.tokens_per_s must be a positive number"),
        (lambda d: d["training"][0].update(tokens_per_s=-1), r"training\[0\]\.tokens_per_s must be positive"),
        (lambda d: d["training"][0]["students"].update(p={"layers": 2}), r"training\[0\]\.students\.p"),
        (lambda d: d["scoring"][0].pop("family"), r"key 'scoring\[0\]\.family' missing"),
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

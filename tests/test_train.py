"""The training loop: learning, exact budgets, shared teacher forward, saved models, exact resume,
dev-loss curves, non-finite losses, SD's saved model, config validation."""

from __future__ import annotations

import copy
import errno
import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from babyteach import methods as methods_module
from babyteach.data.masking import DEV_STREAM, mask_blocks, mask_key, predictions_per_block, replacement_ids
from babyteach.data.shards import PackedBlocks, read_meta
from babyteach.errors import InputError, WriteError
from babyteach.losses import cross_entropy, kd_loss, sd_loss
from babyteach.methods import METHODS, MLMBatch, StepContext, make_method
from babyteach.models import build_model, count_parameters, flops_per_token, masked_logits
from babyteach.train import NonFiniteLossError, TrainConfig, plan_steps
from train_helpers import BLOCK, SMALL, TINY, checkpoint_of, config, parameters_of, read_metrics, run


def without_timing(metrics: list[dict]) -> list[dict]:
    """Metrics lines without the measured throughput, which differs between runs."""
    return [{k: v for k, v in line.items() if k != "tokens_per_s"} for line in metrics]


class Recorder:
    """An ``on_step`` hook that keeps the live student models of the last step."""

    def __init__(self) -> None:
        self.models = None

    def __call__(self, step, models, losses) -> None:
        self.models = models


@pytest.fixture(scope="module")
def baseline(data, tmp_path_factory: pytest.TempPathFactory):
    """30 baseline steps of one tiny student, budget 5 tokens more than 30 steps."""
    tmp = tmp_path_factory.mktemp("baseline")
    recorder = Recorder()
    cfg = config(token_budget=30 * 8 * BLOCK + 5)
    summary = run(data, tmp, "baseline", {"teacher": TINY}, cfg, on_step=recorder)
    return tmp / "run" / "out", summary, recorder.models


def test_baseline_loss_decreases(baseline):
    out, _, _ = baseline
    losses = [record["loss"]["teacher"] for record in read_metrics(out)]
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)


def test_budget_gives_exact_steps_tokens_and_outputs(data, baseline):
    out, summary, _ = baseline
    assert summary["steps"] == 30 and summary["tokens"] == 30 * 8 * BLOCK and summary["tokens_per_step"] == 8 * BLOCK
    assert json.loads((out / "train_summary.json").read_text()) == summary
    assert sorted(p.name for p in out.iterdir()) == ["gpu.csv", "metrics.jsonl", "teacher", "train_summary.json"]
    assert len(summary["config_hash"]) == 16
    # this machine has no GPU: the sampler says why, and its CSV has the header only
    assert summary["gpu"]["gpus"] == 0 and summary["gpu"]["reason"]
    assert (out / "gpu.csv").read_text().splitlines() == ["time_s,gpu,util_pct,mem_used_mib,mem_total_mib,power_w"]
    # analytic FLOPs: the head counted on the masked share of the tokens
    assert summary["students"]["teacher"]["training_flops"] == flops_per_token(TINY, 300, BLOCK, 0.15) * 30 * 8 * BLOCK
    metrics = read_metrics(out)
    assert [r["step"] for r in metrics] == list(range(1, 31))
    assert metrics[-1]["tokens"] == summary["tokens"]
    # 3 warmup steps from 0 (the lr logged is the one the step used), then cosine decay
    assert [r["lr"] for r in metrics[:4]] == pytest.approx([0.0, 1e-3, 2e-3, 3e-3])
    assert metrics[-1]["lr"] < metrics[4]["lr"] < metrics[3]["lr"]
    student = summary["students"]["teacher"]
    assert student["parameters"] == count_parameters(TINY, 300, BLOCK)
    assert 0 < student["final_dev_loss"] < metrics[0]["loss"]["teacher"]
    card = (out / "teacher" / "README.md").read_text()
    for fact in (
        "baseline",
        "L2-H2-D16",
        f"{student['parameters']:,}",
        f"{summary['tokens']:,}",
        "| seed | 0 |",
        f"{student['training_flops']:.3e}",
        "on cpu × 1",
        f"`{summary['config_hash']}`",
    ):
        assert fact in card


def test_epochs_give_exact_steps(data):
    n_blocks = len(PackedBlocks(data[0], "train", BLOCK))
    plan = plan_steps(config(token_budget=None, epochs=1.5, batch_size=4, grad_accum=3), n_blocks)
    assert plan.batches_per_epoch == n_blocks // 4
    assert plan.steps == int(1.5 * (n_blocks // 4) / 3) and plan.tokens == plan.steps * 4 * 3 * BLOCK
    with pytest.raises(InputError, match="less than one step"):
        plan_steps(config(token_budget=8 * BLOCK - 1), n_blocks)
    with pytest.raises(InputError, match="batch_size"):
        plan_steps(config(batch_size=n_blocks + 1), n_blocks)


def test_saved_folder_loads_and_matches_the_trained_model(data, baseline):
    out, _, live = baseline
    folder = out / "teacher"
    loaded = AutoModelForMaskedLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(["the cat sat on the <mask> ."], return_tensors="pt")
    assert ids["input_ids"][0, 0].item() == tokenizer.bos_token_id and tokenizer.mask_token_id == 4
    model = live["teacher"].eval()
    with torch.no_grad():
        expected = model(**ids).logits
        assert torch.equal(loaded(**ids).logits, expected)
    assert torch.isfinite(expected).all()


def test_kd_runs_the_teacher_once_per_micro_batch_for_all_students(data, baseline, tmp_path, monkeypatch):
    out, _, _ = baseline
    calls = []  # (is the teacher, input ids) of every masked forward pass
    forward = methods_module.masked_logits

    def recording_forward(model, input_ids, *args):
        calls.append((not model.training, input_ids.clone()))  # the teacher is the one in eval mode
        return forward(model, input_ids, *args)

    monkeypatch.setattr(methods_module, "masked_logits", recording_forward)
    cfg = config(token_budget=3 * 2 * 8 * BLOCK, grad_accum=2)
    summary = run(
        data,
        tmp_path,
        "kd",
        {"peer1": TINY, "peer2": SMALL},
        cfg,
        teacher_dir=out / "teacher",
        method_options={"lam": 0.5, "tau": 2.0},
    )
    assert summary["steps"] == 3 and len(calls) == 3 * 2 * 3  # 3 steps × 2 micro-batches × (teacher + 2 students)
    for first in range(0, len(calls), 3):  # per micro-batch: one teacher pass, both students, the same input
        group = calls[first : first + 3]
        assert [is_teacher for is_teacher, _ in group].count(True) == 1
        assert all(torch.equal(ids, group[0][1]) for _, ids in group)
    assert not torch.equal(calls[0][1], calls[3][1])
    assert set(summary["students"]) == {"peer1", "peer2"}
    saved = tmp_path / "run" / "out"
    assert (saved / "peer1" / "config.json").is_file() and (saved / "peer2" / "config.json").is_file()
    assert set(read_metrics(saved)[-1]["loss"]) == {"peer1", "peer2"}


def test_kd_needs_a_saved_teacher_and_processes_need_an_even_batch_split(data, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="pass teacher_dir"):
        run(data, tmp_path, "kd", {"peer1": TINY}, config())
    with pytest.raises(InputError, match="no saved model"):
        run(data, tmp_path, "kd", {"peer1": TINY}, config(), teacher_dir=tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(InputError, match=r"training\.batch_size: 8 blocks cannot be split evenly over 3 processes"):
        run(data, tmp_path, "baseline", {"peer1": TINY}, config())
    assert not (tmp_path / "run").exists()


def test_interrupted_run_resumes_to_the_same_weights(data, tmp_path):
    # SD (extra modules in the optimiser) with two students, gradient accumulation, dropout and
    # an epoch boundary (12 micro-batches per epoch, 2 per step): everything resume restores.
    students = {"a": TINY, "b": SMALL}
    cfg = config(token_budget=10 * 2 * 8 * BLOCK, grad_accum=2, checkpoint_every=3)
    run(data, tmp_path, "sd", students, cfg, tag="whole")

    def kill(step, models, losses):
        if step == 5:  # after the checkpoint of step 3; steps 4 and 5 are lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, "sd", students, cfg, tag="killed", on_step=kill)
    assert not (tmp_path / "killed" / "out").exists()
    assert torch.load(checkpoint_of(tmp_path / "killed" / "ckpt"), weights_only=True)["step"] == 3
    run(data, tmp_path, "sd", students, cfg, tag="killed")

    whole, resumed = tmp_path / "whole", tmp_path / "killed"
    for name in students:
        a, b = parameters_of(whole / "out", name), parameters_of(resumed / "out", name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    ckpt_a = torch.load(checkpoint_of(whole / "ckpt"), weights_only=True)
    ckpt_b = torch.load(checkpoint_of(resumed / "ckpt"), weights_only=True)
    for name in students:
        exits_a, exits_b = ckpt_a["peers"][name]["extra"], ckpt_b["peers"][name]["extra"]
        assert all(torch.equal(exits_a[k], exits_b[k]) for k in exits_a)
    assert without_timing(read_metrics(whole / "out")) == without_timing(read_metrics(resumed / "out"))


def hand_dev_loss(data, models, cfg) -> dict[str, float]:
    """Masked CE over every masked position of the first ``cfg.dev_blocks`` dev blocks, masked as the
    dev loss is (batch j of ``batch_size`` blocks with key (seed, DEV_STREAM, j)), dropout off; the
    blocks come from the host reader and the head runs on a boolean mask, not the loop's gather."""
    shards, _ = data
    dev, meta = PackedBlocks(shards, "dev", BLOCK), read_meta(shards)
    n = min(cfg.dev_blocks, len(dev))
    special = sorted(meta["special_tokens"].values())
    train = PackedBlocks(shards, "train", BLOCK).get_blocks(np.arange(len(PackedBlocks(shards, "train", BLOCK))))
    k = predictions_per_block(cfg.mask_prob, float((train[:, 1:-1] != meta["special_tokens"]["</s>"]).sum(1).mean()))
    batches = [
        mask_blocks(
            torch.from_numpy(dev.get_blocks(np.arange(first, min(first + cfg.batch_size, n)))),
            mask_key(cfg.seed, DEV_STREAM, j),
            k,
            torch.tensor(special),
            replacement_ids(meta["vocab_size"], special, torch.device("cpu")),
            meta["special_tokens"]["<mask>"],
        )
        for j, first in enumerate(range(0, n, cfg.batch_size))
    ]
    targets = torch.cat([b.targets for b in batches])
    losses = {}
    with torch.no_grad():
        for name, model in models.items():
            model.eval()
            logits = []
            for b in batches:
                chosen = torch.zeros_like(b.input_ids, dtype=torch.bool).scatter(1, b.positions, True)  # (batch, seq)
                logits.append(masked_logits(model, b.input_ids, None, chosen))
            losses[name] = torch.nn.functional.cross_entropy(torch.cat(logits), targets).item()  # (n_masked, vocab)
    return losses


def test_eval_every_logs_a_dev_loss_curve_without_changing_the_training(data, tmp_path):
    # two students with dropout: the evaluations must leave the dropout draws, the weights and the
    # training-loss lines exactly as a run without them
    students = {"a": TINY, "b": SMALL}
    plain_cfg = config(token_budget=7 * 8 * BLOCK, log_every=2, checkpoint_every=4)
    cfg = config(token_budget=7 * 8 * BLOCK, log_every=2, checkpoint_every=4, eval_every=3)
    assert cfg.dev_blocks == 16 and cfg.dropout > 0
    plain = run(data, tmp_path, "baseline", students, plain_cfg, tag="plain")
    snapshots, modes = {}, []

    def snapshot(step, models, losses):
        modes.append(all(model.training for model in models.values()))  # back in train mode after evaluating
        if step == 3:
            snapshots.update(copy.deepcopy(dict(models)))

    summary = run(data, tmp_path, "baseline", students, cfg, tag="eval", on_step=snapshot)
    assert modes == [True] * 7

    metrics = read_metrics(tmp_path / "eval" / "out")
    dev_lines = [line for line in metrics if "dev_loss" in line]
    assert [(line["step"], line["tokens"]) for line in dev_lines] == [(s, s * 8 * BLOCK) for s in (3, 6, 7)]
    assert all(set(line) == {"step", "tokens", "dev_loss"} for line in dev_lines)  # dev lines apart from loss lines
    assert dev_lines[-1]["dev_loss"] == {name: summary["students"][name]["final_dev_loss"] for name in students}
    assert dev_lines[-1]["dev_loss"] == {name: plain["students"][name]["final_dev_loss"] for name in students}
    assert dev_lines[0]["dev_loss"] == pytest.approx(hand_dev_loss(data, snapshots, cfg), rel=1e-5)
    assert dev_lines[0]["dev_loss"] != dev_lines[1]["dev_loss"]  # the curve moves with training
    plain_metrics = read_metrics(tmp_path / "plain" / "out")
    assert not [line for line in plain_metrics if "dev_loss" in line]  # eval_every None: the final dev loss only
    assert without_timing([line for line in metrics if "loss" in line]) == without_timing(plain_metrics)
    for name in students:
        a, b = parameters_of(tmp_path / "plain" / "out", name), parameters_of(tmp_path / "eval" / "out", name)
        assert all(torch.equal(a[k], b[k]) for k in a), name

    # killed after the checkpoint of step 4 (which holds the step-3 point): the resumed run's lines are the same,
    # and a rerun of the finished run (final checkpoint) adds the final point once
    def kill(step, models, losses):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, "baseline", students, cfg, tag="killed", on_step=kill)
    run(data, tmp_path, "baseline", students, cfg, tag="killed")
    assert without_timing(read_metrics(tmp_path / "killed" / "out")) == without_timing(metrics)
    run(data, tmp_path, "baseline", students, cfg, tag="killed", on_step=lambda *args: pytest.fail("trained again"))
    assert without_timing(read_metrics(tmp_path / "killed" / "out")) == without_timing(metrics)


def test_rerun_of_a_finished_run_rewrites_its_outputs_and_changed_settings_start_a_new_run(data, tmp_path):
    cfg = config(token_budget=2 * 8 * BLOCK)
    first = run(data, tmp_path, "baseline", {"a": TINY}, cfg)
    out = tmp_path / "run" / "out"
    weights = parameters_of(out, "a")
    (out / "metrics.jsonl").unlink()  # e.g. a job killed while writing outputs, then cleaned up
    again = run(data, tmp_path, "baseline", {"a": TINY}, cfg, on_step=lambda *args: pytest.fail("trained again"))
    again.pop("wall_time_s"), first.pop("wall_time_s")
    assert again == first
    assert (out / "metrics.jsonl").is_file()
    assert all(torch.equal(weights[k], v) for k, v in parameters_of(out, "a").items())
    # another learning rate (Snakemake reruns the job after a config change): a run of its own,
    # from step 0, beside the first run's checkpoint
    steps = []
    run(
        data,
        tmp_path,
        "baseline",
        {"a": TINY},
        config(token_budget=2 * 8 * BLOCK, lr=1e-3),
        on_step=lambda step, *args: steps.append(step),
    )
    assert steps == [1, 2]
    assert len(list((tmp_path / "run" / "ckpt").glob("run-*/checkpoint.pt"))) == 2


def test_a_damaged_checkpoint_is_an_error_not_a_fresh_start(data, tmp_path):
    cfg = config(token_budget=4 * 8 * BLOCK, checkpoint_every=2)

    def kill(step, models, losses):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, "baseline", {"a": TINY}, cfg, on_step=kill)
    path = checkpoint_of(tmp_path / "run" / "ckpt")
    path.write_bytes(path.read_bytes()[:100])  # truncated, e.g. by a full disk outside our atomic write
    with pytest.raises(InputError, match=r"cannot read the checkpoint .* Delete it to start this run afresh"):
        run(data, tmp_path, "baseline", {"a": TINY}, cfg, on_step=lambda *args: pytest.fail("trained"))


def test_non_finite_loss_stops_naming_step_and_student_and_keeps_the_checkpoint(data, tmp_path):
    def poison(step, models, losses):
        if step == 3:
            with torch.no_grad():
                models["b"].lm_head.dense.weight.fill_(float("nan"))

    cfg = config(token_budget=6 * 8 * BLOCK, checkpoint_every=3)
    with pytest.raises(NonFiniteLossError, match=r"step 4: the loss of student 'b' is nan"):
        run(data, tmp_path, "baseline", {"a": TINY, "b": TINY}, cfg, on_step=poison)
    assert not (tmp_path / "run" / "out").exists()
    state = torch.load(checkpoint_of(tmp_path / "run" / "ckpt"), weights_only=True)
    assert state["step"] == 3
    assert all(torch.isfinite(t).all() for peer in state["peers"].values() for t in peer["model"].values())


def test_sd_saves_only_the_base_model(data, tmp_path):
    summary = run(data, tmp_path, "sd", {"s": TINY}, config(token_budget=2 * 8 * BLOCK))
    folder = tmp_path / "run" / "out" / "s"
    model, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reference = build_model(TINY, 300, BLOCK, seed=0)
    assert set(model.state_dict()) == set(reference.state_dict())
    assert sum(p.numel() for p in model.parameters()) == summary["students"]["s"]["parameters"]
    state = torch.load(checkpoint_of(tmp_path / "run" / "ckpt"), weights_only=True)
    assert state["peers"]["s"]["extra"]  # the exits were trained (and checkpointed), not saved


def test_registry_and_config_validation():
    assert set(METHODS) >= {"baseline", "kd", "sd"}
    assert make_method("kd").options() == {"lam": 0.5, "tau": 2.0}
    assert make_method("sd").options() == {"lam": 0.1, "tau": 3.0, "mu": 1e-6}
    with pytest.raises(InputError, match="unknown training method 'dwml2'"):
        make_method("dwml2")
    with pytest.raises(InputError, match=r"no option\(s\) \['alpha'\]"):
        make_method("kd", alpha=0.5)
    with pytest.raises(InputError, match="kd.tau"):
        make_method("kd", tau=0.0)
    with pytest.raises(InputError, match="exactly one of token_budget and epochs"):
        TrainConfig(token_budget=10, epochs=1.0)
    with pytest.raises(InputError, match="exactly one of token_budget and epochs"):
        TrainConfig(epochs=None)
    assert (TrainConfig().epochs, TrainConfig(token_budget=100).epochs) == (10, None)  # the schema's, unless a budget
    for bad in (
        dict(lr=-1.0),
        dict(batch_size=0),
        dict(mask_prob=1.0),
        dict(precision="fp16"),
        dict(warmup_fraction=1.0),
        dict(clip_norm=0.0),
        dict(block_size=2),
    ):
        with pytest.raises(InputError):
            TrainConfig(token_budget=100, **bad)
    for bad_eval in (0, -5, "x", 2.5, True):
        with pytest.raises(InputError, match=r"^training\.eval_every: must be a positive integer"):
            TrainConfig(token_budget=100, eval_every=bad_eval)
    assert TrainConfig(token_budget=100, eval_every=None).eval_every is None
    assert TrainConfig(token_budget=100, eval_every=500).eval_every == 500
    assert set(TrainConfig.help()) == {f for f in TrainConfig.__dataclass_fields__}


def test_methods_compute_the_losses_of_the_spec_and_share_the_teacher_pass():
    students = {"a": build_model(TINY, 300, BLOCK, seed=1).eval(), "b": build_model(SMALL, 300, BLOCK, seed=2).eval()}
    teacher = build_model(TINY, 300, BLOCK, seed=3).eval()
    teacher_passes = []
    teacher.roberta.register_forward_hook(lambda *args: teacher_passes.append(1))
    ids = torch.randint(5, 300, (3, BLOCK), generator=torch.Generator().manual_seed(0))
    positions = torch.zeros(3, BLOCK, dtype=torch.bool)
    positions[:, 2::5] = True
    batch = MLMBatch(input_ids=ids, positions=positions, targets=torch.arange(positions.sum().item()) + 5)
    z = {name: masked_logits(model, ids, None, positions) for name, model in students.items()}
    z_teacher = masked_logits(teacher, ids, None, positions)
    teacher_passes.clear()

    baseline = make_method("baseline").step_loss(StepContext(batch, students, {}))
    kd_method = make_method("kd", lam=0.3, tau=1.5)
    kd = kd_method.step_loss(StepContext(batch, students, {}, teacher))
    sd_method = make_method("sd")
    exits = sd_method.extra_modules(students)
    sd = sd_method.step_loss(StepContext(batch, students, exits))
    assert len(teacher_passes) == 1  # one teacher pass for both students
    for name, model in students.items():
        assert torch.allclose(baseline[name], cross_entropy(z[name], batch.targets))
        assert torch.allclose(kd[name], kd_loss(z[name], z_teacher, batch.targets, lam=0.3, tau=1.5))
        out = exits[name](model, ids, None, positions)
        assert len(out.logits) == min(4, model.config.num_hidden_layers)
        assert torch.allclose(sd[name], sd_loss(out.logits, out.hidden, batch.targets, 0.1, 3.0, 1e-6))
    ctx = StepContext(batch, students, {}, teacher)
    assert ctx.teacher_logits() is ctx.teacher_logits() and len(teacher_passes) == 2


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    cfg = config(token_budget=6 * 8 * BLOCK, checkpoint_every=2)
    real_save, saves = torch.save, []

    def disk_full_on_the_second_save(obj, file, *args, **kwargs):
        saves.append(file)
        if len(saves) == 2:
            file.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_the_second_save)
    with pytest.raises(WriteError, match="checkpoint.pt: cannot be written: No space left on device"):
        run(data, tmp_path, "baseline", {"a": TINY}, cfg)
    path = checkpoint_of(tmp_path / "run" / "ckpt")
    assert torch.load(path, weights_only=True)["step"] == 2  # the good one, untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt", "gpu.csv"]  # no half-written temporary
    monkeypatch.undo()
    steps = []
    run(data, tmp_path, "baseline", {"a": TINY}, cfg, on_step=lambda step, *args: steps.append(step))
    assert steps == [3, 4, 5, 6]  # resumed from it


def test_bf16_precision_autocasts_on_the_cpu_too(data, tmp_path):
    # training.precision: bf16 runs forward and loss under bf16 autocast on any device (the CPU study of the
    # GPU's bf16 path): the same run in fp32 and bf16 ends close, but not equal
    fp32 = run(
        data, tmp_path, "baseline", {"a": TINY}, config(token_budget=3 * 8 * BLOCK, precision="fp32"), tag="fp32"
    )
    bf16 = run(
        data, tmp_path, "baseline", {"a": TINY}, config(token_budget=3 * 8 * BLOCK, precision="bf16"), tag="bf16"
    )
    a, b = fp32["students"]["a"]["final_dev_loss"], bf16["students"]["a"]["final_dev_loss"]
    assert a != b and abs(a - b) < 0.05

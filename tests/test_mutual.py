"""Mutual learning in the training loop: DML, DWML (outer step, ω log, resume) and KD_DWML."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from babyteach.bilevel import hypergradient_and_outer_loss, mirror_descent_step
from babyteach.errors import InputError
from babyteach.losses import kd_loss, mutual_loss_terms
from babyteach.methods import MLMBatch, OuterStep, StepContext, make_method
from babyteach.models import build_model, masked_logits
from babyteach.train import NonFiniteLossError
from babyteach.train_outputs import PEER_WEIGHTS_FILE
from train_helpers import BLOCK, SMALL, TINY, checkpoint_of, config, parameters_of, read_metrics, run

PEERS = {"peer-1": SMALL, "peer-2": TINY}


def losses_of(out) -> list[dict]:
    return [line["loss"] for line in read_metrics(out)]


def test_dwml_without_outer_steps_is_dml_step_for_step(data, tmp_path):
    cfg = config(token_budget=6 * 8 * BLOCK)
    run(data, tmp_path, "dml", PEERS, cfg, tag="dml", method_options={"alpha": 0.3})
    summary = run(
        data, tmp_path, "dwml", PEERS, cfg, tag="dwml", method_options={"alpha": 0.3, "weight_update_every": 7}
    )  # 6 steps: never due
    assert summary["outer_steps"] == 0
    assert losses_of(tmp_path / "dml" / "out") == losses_of(tmp_path / "dwml" / "out")
    for name in PEERS:
        a, b = parameters_of(tmp_path / "dml" / "out", name), parameters_of(tmp_path / "dwml" / "out", name)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert summary["students"][name]["peer_weight"] == pytest.approx(0.5)


def test_finite_difference_inner_products_give_the_hypergradient_of_the_backward_ones(data, tmp_path):
    # same run, same draws up to the first outer step (step 2): g by two forwards along v ≈ g by M backward
    # passes (float32 with dropout on; the float64 check against Eq. 3 is in test_bilevel)
    cfg = config(token_budget=2 * 8 * BLOCK)
    logs = {}
    for inner_product in ("backward", "finite_difference"):
        options = {"weight_update_every": 2, "inner_product": inner_product}
        run(data, tmp_path, "dwml", PEERS, cfg, tag=inner_product, method_options=options)
        logs[inner_product] = pd.read_csv(tmp_path / inner_product / "out" / PEER_WEIGHTS_FILE)
    columns = ["hypergradient.peer-1", "hypergradient.peer-2"]
    exact, approx = logs["backward"][columns].to_numpy()[1], logs["finite_difference"][columns].to_numpy()[1]
    assert approx == pytest.approx(exact, rel=1e-3)
    assert logs["finite_difference"]["outer_loss"][1] == pytest.approx(logs["backward"]["outer_loss"][1], rel=1e-6)


def test_one_peer_without_peer_terms_is_the_baseline(data, tmp_path):
    # M = 1: no other peer to learn from, ω = (1); with α = 0 the loss is exactly CE
    cfg = config(token_budget=4 * 8 * BLOCK)
    run(data, tmp_path, "baseline", {"peer-1": TINY}, cfg, tag="baseline")
    run(
        data,
        tmp_path,
        "dwml",
        {"peer-1": TINY},
        cfg,
        tag="dwml",
        method_options={"alpha": 0.0, "weight_update_every": 2},
    )
    assert losses_of(tmp_path / "baseline" / "out") == losses_of(tmp_path / "dwml" / "out")
    a, b = parameters_of(tmp_path / "baseline" / "out", "peer-1"), parameters_of(tmp_path / "dwml" / "out", "peer-1")
    assert all(torch.equal(a[k], b[k]) for k in a)
    weights = pd.read_csv(tmp_path / "dwml" / "out" / PEER_WEIGHTS_FILE)
    assert (weights["weight.peer-1"] == 1.0).all()


def test_dwml_logs_and_applies_the_outer_steps(data, tmp_path):
    cfg = config(token_budget=9 * 8 * BLOCK)  # 9 steps: outer steps at 2, 4, 6, 8, none in the odd remainder
    options = {"alpha": 0.5, "weight_update_every": 2, "eta0": 5.0, "eta_min": 0.5}
    summary = run(data, tmp_path, "dwml", PEERS, cfg, method_options=options)
    out = tmp_path / "run" / "out"
    log = pd.read_csv(out / PEER_WEIGHTS_FILE)
    assert list(log["step"]) == [0, 2, 4, 6, 8] and list(log["update"]) == [0, 1, 2, 3, 4]
    weights = log[["weight.peer-1", "weight.peer-2"]].to_numpy()
    assert weights[0] == pytest.approx([0.5, 0.5])
    assert weights.sum(axis=1) == pytest.approx([1.0] * 5)
    assert abs(weights[-1, 0] - 0.5) > 1e-3  # ω moved away from uniform
    # each row is the previous ω moved by that row's g and η (Eq. 4)
    grads = log[["hypergradient.peer-1", "hypergradient.peer-2"]].to_numpy()
    # η: cosine over the 4 outer steps from η₀ to exactly η_min, 0.5 + 4.5 (1 + cos(π u / 3)) / 2 for u = 0..3
    # (the former schedule stopped at u = 3 of 4: 5, 4.341, 2.75, 1.159, never reaching η_min)
    assert list(log["eta"][1:]) == pytest.approx([5.0, 3.875, 1.625, 0.5], rel=1e-12)
    for row in range(1, 5):
        expected = mirror_descent_step(torch.tensor(weights[row - 1]), torch.tensor(grads[row]), log["eta"][row])
        assert weights[row] == pytest.approx(expected.numpy(), rel=1e-5)
    assert (log["outer_loss"][1:] > 0).all() and (log["gamma"][1:] > 0).all()
    final = {name: summary["students"][name]["peer_weight"] for name in PEERS}
    assert [final["peer-1"], final["peer-2"]] == pytest.approx(weights[-1], rel=1e-6)
    card = (out / "peer-2" / "README.md").read_text()
    assert f"| final peer weight ω | {final['peer-2']:.4f} |" in card


def test_interrupted_dwml_run_resumes_to_the_same_weights_and_omega(data, tmp_path):
    cfg = config(token_budget=6 * 8 * BLOCK, checkpoint_every=2)
    options = {"weight_update_every": 1, "eta0": 2.0}
    run(data, tmp_path, "dwml", PEERS, cfg, tag="whole", method_options=options)

    def kill(step, models, losses):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, "dwml", PEERS, cfg, tag="killed", method_options=options, on_step=kill)
    assert torch.load(checkpoint_of(tmp_path / "killed" / "ckpt"), weights_only=True)["step"] == 2
    run(data, tmp_path, "dwml", PEERS, cfg, tag="killed", method_options=options)
    whole, resumed = tmp_path / "whole" / "out", tmp_path / "killed" / "out"
    pd.testing.assert_frame_equal(pd.read_csv(whole / PEER_WEIGHTS_FILE), pd.read_csv(resumed / PEER_WEIGHTS_FILE))
    for name in PEERS:
        a, b = parameters_of(whole, name), parameters_of(resumed, name)
        assert all(torch.equal(a[k], b[k]) for k in a)


def tiny_batch(seed: int) -> MLMBatch:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 300, (2, BLOCK), generator=gen)
    positions = torch.zeros(2, BLOCK, dtype=torch.bool)
    positions[:, 1::4] = True
    targets = torch.randint(5, 300, (int(positions.sum()),), generator=gen)
    return MLMBatch(input_ids=ids, positions=positions, targets=targets)


def test_kd_dwml_step_and_outer_step_follow_the_spec_with_one_teacher_pass():
    students = {name: build_model(arch, 300, BLOCK, seed=i).eval() for i, (name, arch) in enumerate(PEERS.items())}
    teacher = build_model(TINY, 300, BLOCK, seed=9).eval()
    passes = []
    teacher.roberta.register_forward_hook(lambda *args: passes.append(1))
    method = make_method("kd_dwml", alpha=0.4, lam=0.3, kd_tau=2.0, weight_update_every=1, eta0=1.0)
    method.start(list(students), torch.device("cpu"))
    batch, dev = tiny_batch(0), tiny_batch(1)
    ctx = StepContext(batch, students, {}, teacher)
    record = numbers(method.outer_step(OuterStep(ctx, dev, gamma=0.1, step=1, total_steps=4)))
    losses = method.step_loss(ctx)
    assert len(passes) == 1  # one teacher pass for the outer step and both peers' inner losses

    # the outer step, computed by hand from the pieces of docs/METHODS.md
    z_teacher = masked_logits(teacher, batch.input_ids, None, batch.positions)
    uniform = torch.tensor([0.5, 0.5])
    g, outer = hypergradient_and_outer_loss(
        list(students.values()),
        ({"input_ids": batch.input_ids, "positions": batch.positions}, batch.targets),
        ({"input_ids": dev.input_ids, "positions": dev.positions}, dev.targets),
        uniform,
        0.4,
        0.1,
        "unrolled",
        tau=1.0,
        inner_product="backward",
        supervised=lambda z, y: kd_loss(z, z_teacher, y, 0.3, 2.0),
    )
    new = mirror_descent_step(uniform, g, 1.0)  # the first outer step uses η₀
    assert [record["weight.peer-1"], record["weight.peer-2"]] == pytest.approx(new.tolist(), rel=1e-5)
    assert [record["hypergradient.peer-1"], record["hypergradient.peer-2"]] == pytest.approx(g.tolist(), rel=1e-5)
    assert record["outer_loss"] == pytest.approx(float(outer), rel=1e-6)
    # the inner loss already uses the new ω, with KD as each peer's supervised term
    z = [masked_logits(m, batch.input_ids, None, batch.positions) for m in students.values()]
    expected = mutual_loss_terms(
        z, batch.targets, new, 0.4, 1.0, [kd_loss(zi, z_teacher, batch.targets, 0.3, 2.0) for zi in z]
    )
    torch.testing.assert_close(torch.stack([losses["peer-1"], losses["peer-2"]]), expected)


def scripted_outer_steps(monkeypatch, gradients: list[list[float]], eta: float = 1.0) -> tuple[object, list[dict]]:
    """A DWML method driven through ``outer_step`` with the hypergradients given (η held at ``eta``)."""
    script = iter(gradients)
    monkeypatch.setattr(
        "babyteach.methods.hypergradient_and_outer_loss",
        lambda *args, **kwargs: (torch.tensor(next(script)), torch.tensor(1.0)),
    )
    method = make_method("dwml", weight_update_every=1, eta0=eta, eta_min=eta)
    method.start(list(PEERS), torch.device("cpu"))
    ctx = StepContext(tiny_batch(0), dict.fromkeys(PEERS), {})  # the students are not read: g is scripted
    records = [
        method.outer_step(OuterStep(ctx, tiny_batch(1), gamma=0.1, step=s, total_steps=len(gradients)))
        for s in range(1, len(gradients) + 1)
    ]
    return method, [numbers(record) for record in records]


def numbers(record: dict) -> dict[str, float]:
    """An outer-step record with its device values (0-d tensors, read back by the loop at log lines) as floats."""
    return {key: float(value) for key, value in record.items()}


def test_a_weight_driven_under_every_float_range_comes_back(monkeypatch):
    # 8 steps of η g = ±60 per peer move log ω₁ − log ω₂ by −960 nats: ω₁ ≈ e^-960 is below float32's
    # smallest subnormal (≈ e^-103) and float64's (≈ e^-745); 8 steps back must restore ω = (½, ½).
    # A state kept as ω (float32 or float64) holds ω₁ = 0 after the first leg and never moves it again.
    down, up = [[60.0, -60.0]] * 8, [[-60.0, 60.0]] * 8
    method, records = scripted_outer_steps(monkeypatch, down + up)
    assert records[0]["weight.peer-1"] == pytest.approx(math.exp(-120), rel=1e-9, abs=0)  # under float32: kept
    assert records[7]["weight.peer-1"] == 0.0 and records[7]["weight.peer-2"] == 1.0  # e^-960 is 0 even in float64
    assert [records[-1]["weight.peer-1"], records[-1]["weight.peer-2"]] == pytest.approx([0.5, 0.5], rel=1e-12)
    assert method.weights.tolist() == [0.5, 0.5]  # the float32 copy the losses read


def test_dwml_state_round_trips_as_float64_log_weights(monkeypatch):
    method, _ = scripted_outer_steps(monkeypatch, [[1.0, -1.0]] * 3)
    state = method.state_dict()
    assert state["log_weights"].dtype == torch.float64  # what the checkpoint holds: log ω, exact
    restored = make_method("dwml", weight_update_every=1, eta0=1.0, eta_min=1.0)
    restored.start(list(PEERS), torch.device("cpu"))
    restored.load_state_dict(state)
    assert torch.equal(restored.state_dict()["log_weights"], state["log_weights"])
    assert torch.equal(restored.weights, method.weights) and restored.weight_values() == method.weight_values()

    for bad in ({}, {"log_weights": torch.zeros(3, dtype=torch.float64)}, {"weights": torch.tensor([1.0])}):
        with pytest.raises(InputError, match="no peer weights for 2 peers"):
            restored.load_state_dict(bad)


def test_kd_dwml_trains_with_a_teacher(data, tmp_path):
    cfg = config(token_budget=4 * 8 * BLOCK)
    run(data, tmp_path, "baseline", {"teacher": TINY}, cfg, tag="teacher")
    summary = run(
        data,
        tmp_path,
        "kd_dwml",
        PEERS,
        cfg,
        tag="students",
        method_options={"weight_update_every": 2},
        teacher_dir=tmp_path / "teacher" / "out" / "teacher",
    )
    assert summary["outer_steps"] == 2
    assert sum(s["peer_weight"] for s in summary["students"].values()) == pytest.approx(1.0)
    with pytest.raises(InputError, match="distils from a teacher"):
        run(data, tmp_path, "kd_dwml", PEERS, cfg, tag="no-teacher")
    with pytest.raises(InputError, match="train the baseline teacher first"):
        run(data, tmp_path, "kd_dwml", PEERS, cfg, tag="bad-teacher", teacher_dir=tmp_path / "nowhere")


@pytest.mark.parametrize(
    "method,options,key",
    [
        ("dml", {"alpha": 1.5}, "mutual.alpha"),
        ("dwml", {"alpha": -0.1}, "mutual.alpha"),
        ("dwml", {"weight_update_every": 0}, "mutual.weight_update_every"),
        ("dwml", {"hypergradient": "second_order"}, "mutual.hypergradient"),
        ("dwml", {"inner_product": "forward"}, "mutual.inner_product"),
        ("dwml", {"eta_min": 1.0}, "mutual.eta_min"),
        ("kd_dwml", {"lam": 2.0}, "kd.lam"),
    ],
)
def test_bad_mutual_options_name_the_config_key(method, options, key):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        make_method(method, **options)


def test_dev_split_too_small_for_an_outer_batch_fails_before_training(data, tmp_path):
    cfg = config(token_budget=64 * 8 * BLOCK, batch_size=64)  # the toy dev split has fewer blocks
    with pytest.raises(InputError, match=r"fewer than one outer batch \(training\.batch_size = 64\)"):
        run(data, tmp_path, "dwml", PEERS, cfg, on_step=lambda *args: pytest.fail("trained"))
    run(data, tmp_path, "dml", PEERS, config(token_budget=64 * BLOCK, batch_size=64), tag="dml")  # DML: no dev


def test_non_finite_outer_step_stops_the_run(data, tmp_path):
    def poison(step, models, losses):
        if step == 1:
            with torch.no_grad():
                models["peer-2"].lm_head.decoder.bias.fill_(float("nan"))

    cfg = config(token_budget=4 * 8 * BLOCK)
    with pytest.raises(NonFiniteLossError, match="step 2: the outer"):
        run(data, tmp_path, "dwml", PEERS, cfg, method_options={"weight_update_every": 2}, on_step=poison)

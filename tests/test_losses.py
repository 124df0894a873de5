"""Losses pinned to values written out by hand (2 masked positions × 3-way vocabulary)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from babyteach.losses import (
    SoftTargets,
    cross_entropy,
    ensemble_loss,
    kd_loss,
    kl_divergence,
    mutual_loss_terms,
    per_peer_coefficients,
    sd_loss,
)

STUDENT = [[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]
TEACHER = [[3.0, 0.0, 1.0], [0.5, -1.0, 2.0]]
TARGETS = [1, 0]


def softmax(row: list[float], tau: float = 1.0) -> list[float]:
    exps = [math.exp(v / tau) for v in row]
    return [e / sum(exps) for e in exps]


def hand_ce(logits: list[list[float]], targets: list[int]) -> float:
    return sum(-math.log(softmax(row)[y]) for row, y in zip(logits, targets)) / len(targets)


def hand_kl(p_logits: list[list[float]], q_logits: list[list[float]], tau: float) -> float:
    total = 0.0
    for p_row, q_row in zip(p_logits, q_logits):
        p, q = softmax(p_row, tau), softmax(q_row, tau)
        total += sum(pv * (math.log(pv) - math.log(qv)) for pv, qv in zip(p, q))
    return total / len(p_logits)


def t(values, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def test_cross_entropy_hand_value():
    expected = ((math.log(math.e + math.e**2 + 1) - 2) + (math.log(2 + math.e) - 0)) / 2
    assert hand_ce(STUDENT, TARGETS) == pytest.approx(expected, rel=1e-12)
    assert cross_entropy(t(STUDENT), torch.tensor(TARGETS)).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="n_masked"):
        cross_entropy(t(STUDENT), torch.tensor([1, 0, 2]))


def test_kl_divergence_direction_and_temperature():
    tau = 2.0
    expected = hand_kl(TEACHER, STUDENT, tau)
    got = kl_divergence(t(TEACHER), t(STUDENT), tau).item()
    assert got == pytest.approx(expected, rel=1e-12)
    # the reverse direction is a different number, so a swapped KL fails the line above
    assert hand_kl(STUDENT, TEACHER, tau) != pytest.approx(expected, rel=1e-3)
    assert kl_divergence(t(TEACHER), t(TEACHER), tau).item() == pytest.approx(0.0, abs=1e-15)


def test_kd_loss_hand_value_with_tau_squared():
    lam, tau = 0.3, 2.0
    expected = (1 - lam) * hand_ce(STUDENT, TARGETS) + lam * tau**2 * hand_kl(TEACHER, STUDENT, tau)
    got = kd_loss(t(STUDENT), t(TEACHER), torch.tensor(TARGETS), lam=lam, tau=tau).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_kd_teacher_gets_no_gradient():
    student, teacher = t(STUDENT, requires_grad=True), t(TEACHER, requires_grad=True)
    kd_loss(student, teacher, torch.tensor(TARGETS), 0.5, 2.0).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_kd_gradient_matches_hand_formula():
    # d/dz_s of τ² KL(p_T ‖ softmax(z_s/τ)) = τ (q − p_T) / n per row; d CE / dz = (softmax(z) − onehot) / n
    lam, tau = 0.5, 2.0
    student = t(STUDENT, requires_grad=True)
    kd_loss(student, t(TEACHER), torch.tensor(TARGETS), lam=lam, tau=tau).backward()
    for r, (row, y) in enumerate(zip(STUDENT, TARGETS)):
        s, q, p = softmax(row), softmax(row, tau), softmax(TEACHER[r], tau)
        for v in range(3):
            hard = (s[v] - (1.0 if v == y else 0.0)) / 2
            soft = tau * (q[v] - p[v]) / 2
            assert student.grad[r, v].item() == pytest.approx((1 - lam) * hard + lam * soft, rel=1e-10)


def test_sd_loss_hand_value_and_detached_deepest():
    lam, tau, mu = 0.1, 3.0, 0.01
    shallow, deep = STUDENT, TEACHER
    h_shallow, h_deep = [[1.0, 2.0], [0.0, -1.0]], [[0.5, 2.0], [1.0, 1.0]]
    squared = (0.5**2 + 0.0**2) + (1.0**2 + 2.0**2)
    expected = (
        hand_ce(deep, TARGETS)
        + (1 - lam) * hand_ce(shallow, TARGETS)
        + lam * tau**2 * hand_kl(deep, shallow, tau)
        + mu * squared
    )
    exit_logits = [t(shallow, requires_grad=True), t(deep, requires_grad=True)]
    exit_hidden = [t(h_shallow, requires_grad=True), t(h_deep, requires_grad=True)]
    loss = sd_loss(exit_logits, exit_hidden, torch.tensor(TARGETS), lam=lam, tau=tau, mu=mu)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    # the deepest head learns from the labels only: its gradient is exactly that of CE(z_K, y)
    deep_ref = t(deep, requires_grad=True)
    F.cross_entropy(deep_ref, torch.tensor(TARGETS)).backward()
    torch.testing.assert_close(exit_logits[1].grad, deep_ref.grad)
    assert exit_hidden[1].grad is None
    torch.testing.assert_close(exit_hidden[0].grad, 2 * mu * (t(h_shallow) - t(h_deep)))


def test_sd_loss_single_exit_is_plain_ce():
    loss = sd_loss([t(STUDENT)], [t([[0.0], [0.0]])], torch.tensor(TARGETS), 0.1, 3.0, 1e-6)
    assert loss.item() == pytest.approx(hand_ce(STUDENT, TARGETS), rel=1e-12)


def mutual_loss(logits, targets, weights, alpha, tau=1.0, supervised=None):
    """L1 = Σ_i T_i, the sum of :func:`mutual_loss_terms` (τ = 1 unless given)."""
    return mutual_loss_terms(logits, targets, weights, alpha, tau, supervised).sum()


def naive_mutual_loss(logits, targets, weights, alpha, tau=1.0, supervised=None):
    """L1 written as docs/METHODS.md writes it: a double loop of pairwise KLs with detached targets."""
    total = 0.0
    for i, z_i in enumerate(logits):
        sup = F.cross_entropy(z_i, targets) if supervised is None else supervised[i]
        total = total + (1 - alpha) * weights[i] * sup
        log_q = F.log_softmax(z_i / tau, dim=-1)
        for j, z_j in enumerate(logits):
            if j != i:
                log_p = F.log_softmax(z_j.detach() / tau, dim=-1)
                kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean()
                total = total + alpha * weights[j] * kl
    return total


def random_peers(m: int, n: int = 4, vocab: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = [torch.randn(n, vocab, generator=gen, dtype=torch.float64).mul(2).requires_grad_() for _ in range(m)]
    targets = torch.randint(vocab, (n,), generator=gen)
    weights = torch.rand(m, generator=gen, dtype=torch.float64)
    return logits, targets, weights / weights.sum()


@pytest.mark.parametrize("m,alpha,tau", [(2, 0.5, 1.0), (3, 0.5, 1.0), (4, 0.3, 2.0), (3, 1.0, 1.0)])
def test_mutual_loss_equals_pairwise_double_loop_in_value_and_gradient(m, alpha, tau):
    logits, targets, weights = random_peers(m)
    got = mutual_loss(logits, targets, weights, alpha, tau)
    ref = naive_mutual_loss(logits, targets, weights, alpha, tau)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    got_grads = torch.autograd.grad(got, logits)
    ref_grads = torch.autograd.grad(ref, logits)
    for g, r in zip(got_grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m", [1, 2, 4])
def test_mutual_loss_terms_are_each_peers_own_share(m):
    # T_i = (1 − α) ω_i CE(z_i, y) + α Σ_{j≠i} ω_j KL(sg(p_j) ‖ p_i), written out per peer
    logits, targets, weights = random_peers(m, seed=2)
    alpha, tau = 0.3, 1.5
    terms = mutual_loss_terms(logits, targets, weights, alpha, tau)
    assert terms.shape == (m,)
    for i, z_i in enumerate(logits):
        log_q = F.log_softmax(z_i / tau, dim=-1)
        expected = (1 - alpha) * weights[i] * F.cross_entropy(z_i, targets)
        for j, z_j in enumerate(logits):
            if j != i:
                log_p = F.log_softmax(z_j.detach() / tau, dim=-1)
                expected = expected + alpha * weights[j] * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
        torch.testing.assert_close(terms[i], expected, rtol=1e-12, atol=1e-12)
        # the share of peer i moves only peer i
        grads = torch.autograd.grad(terms[i], logits, retain_graph=True, allow_unused=True)
        assert all(g is None or not g.any() for k, g in enumerate(grads) if k != i)


def test_mutual_loss_hand_value_two_peers():
    alpha, w = 0.5, [0.25, 0.75]
    expected = (1 - alpha) * (w[0] * hand_ce(STUDENT, TARGETS) + w[1] * hand_ce(TEACHER, TARGETS)) + alpha * (
        w[1] * hand_kl(TEACHER, STUDENT, 1.0) + w[0] * hand_kl(STUDENT, TEACHER, 1.0)
    )
    got = mutual_loss([t(STUDENT), t(TEACHER)], torch.tensor(TARGETS), t(w), alpha)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_mutual_loss_target_peer_gets_gradient_only_as_student():
    # alpha = 1, M = 2: L1 = ω_2 KL(sg(p_2) ‖ p_1) + ω_1 KL(sg(p_1) ‖ p_2); peer 2's gradient must be
    # ω_1 (p_2 − p_1) / n from its own row as the student, nothing through its detached target p_2.
    logits, targets, weights = random_peers(2)
    got = torch.autograd.grad(mutual_loss(logits, targets, weights, alpha=1.0), logits)
    p1, p2 = (F.softmax(z.detach(), dim=-1) for z in logits)
    n = logits[0].shape[0]
    torch.testing.assert_close(got[1], weights[0] * (p2 - p1) / n)
    torch.testing.assert_close(got[0], weights[1] * (p1 - p2) / n)
    ref = torch.autograd.grad(naive_mutual_loss(logits, targets, weights, alpha=1.0), logits)
    torch.testing.assert_close(got[1], ref[1])


def test_mutual_loss_supervised_override():
    logits, targets, weights = random_peers(3)
    supervised = [kd_loss(z, logits[0].detach() * 0.5, targets, 0.5, 2.0) for z in logits]
    got = mutual_loss(logits, targets, weights, 0.5, supervised=supervised)
    ref = naive_mutual_loss(logits, targets, weights, 0.5, supervised=supervised)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    coefs = per_peer_coefficients(logits, targets, 0.5, 1.0, supervised=supervised)
    torch.testing.assert_close((weights * coefs).sum(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m,alpha,tau", [(2, 0.5, 1.0), (3, 0.5, 1.0), (4, 0.7, 2.0)])
def test_per_peer_coefficients_are_the_weights_coefficients(m, alpha, tau):
    logits, targets, weights = random_peers(m, seed=1)
    coefs = per_peer_coefficients(logits, targets, alpha, tau)
    assert coefs.shape == (m,)
    # each La_k written out: (1 − α) CE(z_k, y) + α Σ_{i≠k} KL(sg(p_k) ‖ p_i)
    for k in range(m):
        ref = (1 - alpha) * F.cross_entropy(logits[k], targets)
        for i in range(m):
            if i != k:
                log_p = F.log_softmax(logits[k].detach() / tau, -1)
                ref = ref + alpha * (log_p.exp() * (log_p - F.log_softmax(logits[i] / tau, -1))).sum(-1).mean()
        torch.testing.assert_close(coefs[k], ref, rtol=1e-12, atol=1e-12)
        for g, r in zip(torch.autograd.grad(coefs[k], logits, retain_graph=True), torch.autograd.grad(ref, logits)):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    # Σ_k ω_k La_k = L1 in value and gradient w.r.t. every peer's logits
    l1 = mutual_loss(logits, targets, weights, alpha, tau)
    combined = (weights * coefs).sum()
    torch.testing.assert_close(combined, l1, rtol=1e-12, atol=1e-12)
    for g, r in zip(torch.autograd.grad(combined, logits, retain_graph=True), torch.autograd.grad(l1, logits)):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_mutual_loss_weight_gradient_is_per_peer_coefficients():
    # L1 is linear in ω with coefficients La_k, so dL1/dω = La exactly (the O(M) constant keeps this true)
    logits, targets, weights = random_peers(3, seed=2)
    weights.requires_grad_()
    (grad_w,) = torch.autograd.grad(mutual_loss(logits, targets, weights, 0.5), weights)
    coefficients = per_peer_coefficients(logits, targets, 0.5, 1.0).detach()
    torch.testing.assert_close(grad_w, coefficients, rtol=1e-12, atol=1e-12)


def test_ensemble_loss_hand_value_in_logit_space():
    w = [0.25, 0.75]
    mixed = [[w[0] * a + w[1] * b for a, b in zip(ra, rb)] for ra, rb in zip(STUDENT, TEACHER)]
    expected = hand_ce(mixed, TARGETS)
    got = ensemble_loss([t(STUDENT), t(TEACHER)], t(w), torch.tensor(TARGETS))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # a probability-space mixture gives a different number, so mixing softmaxes fails the line above
    prob_space = (
        -sum(math.log(w[0] * softmax(a)[y] + w[1] * softmax(b)[y]) for a, b, y in zip(STUDENT, TEACHER, TARGETS)) / 2
    )
    assert prob_space != pytest.approx(expected, rel=1e-3)


def test_peer_checks():
    logits, targets, weights = random_peers(3)
    with pytest.raises(ValueError, match="weights"):
        mutual_loss(logits, targets, weights[:2], 0.5)
    with pytest.raises(ValueError, match="one shape"):
        ensemble_loss([logits[0], logits[1][:2]], weights[:2], targets)


def test_shared_soft_targets_give_the_same_kd_loss_and_gradient():
    student = t(STUDENT).requires_grad_()
    shared = SoftTargets.of(t(TEACHER), tau=2.0)
    got = kd_loss(student, shared, torch.tensor(TARGETS), lam=0.3, tau=2.0)
    expected = (1 - 0.3) * hand_ce(STUDENT, TARGETS) + 0.3 * 4.0 * hand_kl(TEACHER, STUDENT, 2.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    ref_student = t(STUDENT).requires_grad_()
    ref = kd_loss(ref_student, t(TEACHER), torch.tensor(TARGETS), lam=0.3, tau=2.0)
    torch.testing.assert_close(torch.autograd.grad(got, student)[0], torch.autograd.grad(ref, ref_student)[0])
    with pytest.raises(ValueError, match="temperature 2.0 used with τ = 3.0"):
        kl_divergence(shared, student, tau=3.0)

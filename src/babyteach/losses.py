"""Training losses of every method in ``docs/METHODS.md``, as pure functions of logits.

All inputs are taken at the masked positions only: logits ``(n_masked, vocab)``, targets
``(n_masked,)``; every loss is a mean over those positions. Distillation targets are always
detached (``sg(·)`` in ``docs/METHODS.md``): no gradient ever reaches a teacher or a target peer
through its own distribution::

    loss = kd_loss(student_logits, teacher_logits, targets, lam=0.5, tau=2.0)
    terms = mutual_loss_terms([z1, z2, z3], targets, weights, alpha=0.5, tau=1.0)  # per-peer shares, (M,)
    inner = terms.sum()                                                          # DWML L1(θ, ω)
    coefs = per_peer_coefficients([z1, z2, z3], targets, alpha=0.5, tau=1.0)     # La_k(θ), shape (M,)
    outer = ensemble_loss([z1, z2, z3], weights, dev_targets)                    # DWML L2(θ, ω)

The hyperparameters (λ, τ, μ, α) have no defaults here: the methods pass theirs
(:mod:`babyteach.methods`, defaulted by the config schema).

References: Hinton, Vinyals & Dean 2015 (KD); Zhang et al. 2019, "Be Your Own Teacher"
(SD); Zhang et al. 2018, "Deep Mutual Learning" (DML); BabyLM 2024, "When Babies Teach
Babies" (DWML, Eq. 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Reject logits that are not ``(n, vocab)`` with ``n ≥ 1`` rows matching ``targets`` ``(n,)``."""
    if logits.dim() != 2 or targets.dim() != 1 or logits.shape[0] != targets.shape[0] or logits.shape[0] == 0:
        raise ValueError(
            f"expected logits (n_masked, vocab) and targets (n_masked,) with n_masked ≥ 1, "
            f"got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )


def _check_peers(logits: Sequence[torch.Tensor], weights: torch.Tensor | None = None) -> None:
    """Reject an empty peer list, peers of different shapes, or weights (if given) that are not ``(M,)``."""
    if len(logits) == 0 or any(z.shape != logits[0].shape for z in logits):
        raise ValueError(f"expected one or more peers' logits of one shape, got {[tuple(z.shape) for z in logits]}")
    if weights is not None and weights.shape != (len(logits),):
        raise ValueError(f"expected weights of shape ({len(logits)},), got {tuple(weights.shape)}")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``CE(z, y) = −(1/n) Σ_r log softmax(z_r)[y_r]``, the mean over the n masked positions.

    The MLM objective of RoBERTa (Liu et al. 2019) restricted to the masked positions.
    """
    _check(logits, targets)
    return F.cross_entropy(logits, targets)


@dataclass(frozen=True)
class SoftTargets:
    """A detached target distribution ``p = softmax(z / τ)`` over the masked positions, with
    its mean negative entropy ``(1/n) Σ_rv p log p``: computed once per batch and reused by
    every student that distils from it (KD's students share one teacher)."""

    probs: torch.Tensor  # (n, vocab)
    neg_entropy: torch.Tensor  # scalar
    tau: float

    @classmethod
    def of(cls, logits: torch.Tensor, tau: float = 1.0) -> SoftTargets:
        """The soft targets of ``logits`` ``(n, vocab)`` at temperature ``tau`` (detached)."""
        log_p = F.log_softmax(logits.detach() / tau, dim=-1)  # (n, vocab)
        probs = log_p.exp()
        return cls(probs, (probs * log_p).sum() / logits.shape[0], tau)


def kl_divergence(target: torch.Tensor | SoftTargets, logits: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``KL(sg(p) ‖ q) = (1/n) Σ_r Σ_v p_rv (log p_rv − log q_rv)``.

    ``p = softmax(target / τ)`` is the (detached) target, given as logits or as precomputed
    :class:`SoftTargets` of the same τ; ``q = softmax(logits / τ)`` the distribution being
    trained; the mean is over the n masked positions. This is the direction of Hinton et al.
    2015: the student q is pulled towards the teacher p. No τ² factor here; the callers that
    need it apply it. Computed as ``(1/n) Σ p log p − (1/n) Σ p log q``.
    """
    soft = target if isinstance(target, SoftTargets) else SoftTargets.of(target, tau)
    if soft.probs.shape != logits.shape or logits.dim() != 2:
        raise ValueError(
            f"expected two (n_masked, vocab) logits, got {tuple(soft.probs.shape)} and {tuple(logits.shape)}"
        )
    if soft.tau != tau:
        raise ValueError(f"soft targets at temperature {soft.tau} used with τ = {tau}")
    log_q = F.log_softmax(logits / tau, dim=-1)  # (n, vocab)
    return soft.neg_entropy - (soft.probs * log_q).sum() / logits.shape[0]


def kd_loss(
    student_logits: torch.Tensor,
    teacher: torch.Tensor | SoftTargets,
    targets: torch.Tensor,
    lam: float,
    tau: float,
) -> torch.Tensor:
    """Knowledge distillation, Hinton et al. 2015: ``(1 − λ) CE(z_s, y) + λ τ² KL(sg(p_T) ‖ p_s)``.

    ``p = softmax(z / τ)``; τ² keeps the soft term's gradients on the scale of the hard
    term's as τ grows. ``teacher`` is the teacher's logits (detached here) or their
    :class:`SoftTargets` at τ, shared by all students of a batch.
    """
    hard = cross_entropy(student_logits, targets)
    soft = kl_divergence(teacher, student_logits, tau)
    return (1 - lam) * hard + lam * tau**2 * soft


def sd_loss(
    exit_logits: Sequence[torch.Tensor],
    exit_hidden: Sequence[torch.Tensor],
    targets: torch.Tensor,
    lam: float,
    tau: float,
    mu: float,
) -> torch.Tensor:
    """Self-distillation, Zhang et al. 2019 ("Be Your Own Teacher"), as in ``docs/METHODS.md``.

    With exits ordered shallowest first (the deepest, index K, is the model's own head)::

        L = CE(z_K, y) + Σ_{k<K} [ (1 − λ) CE(z_k, y) + λ τ² KL(sg(p_K) ‖ p_k) + μ ‖h_k − sg(h_K)‖² ]

    ``exit_hidden[k]`` is the hidden state ``(n_masked, H)`` at the end of section k.
    ``‖·‖²`` is the squared Frobenius norm, summed over all masked positions and features
    (not averaged), as in the public BYOT implementation whose ``μ = 1e-6`` assumes it.
    The deepest softmax and features are detached.
    """
    if len(exit_logits) == 0 or len(exit_logits) != len(exit_hidden):
        raise ValueError(
            f"expected as many exit logits as hidden states (≥ 1), got {len(exit_logits)} and {len(exit_hidden)}"
        )
    deepest_logits, deepest_hidden = exit_logits[-1], exit_hidden[-1].detach()
    loss = cross_entropy(deepest_logits, targets)
    for logits, hidden in zip(exit_logits[:-1], exit_hidden[:-1], strict=True):
        if hidden.shape != deepest_hidden.shape:
            raise ValueError(
                f"exit hidden states differ in shape: {tuple(hidden.shape)} vs {tuple(deepest_hidden.shape)}"
            )
        loss = loss + (1 - lam) * cross_entropy(logits, targets)
        loss = loss + lam * tau**2 * kl_divergence(deepest_logits, logits, tau)
        loss = loss + mu * (hidden - deepest_hidden).pow(2).sum()
    return loss


def _supervised_terms(
    logits: Sequence[torch.Tensor], targets: torch.Tensor, supervised: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    """Each peer's supervised loss as an ``(M,)`` tensor: ``CE(z_i, y)`` unless given."""
    if supervised is None:
        return torch.stack([cross_entropy(z, targets) for z in logits])
    if len(supervised) != len(logits):
        raise ValueError(f"expected one supervised loss per peer ({len(logits)}), got {len(supervised)}")
    return torch.stack(list(supervised))


def mutual_loss_terms(
    logits: Sequence[torch.Tensor],
    targets: torch.Tensor,
    weights: torch.Tensor,
    alpha: float,
    tau: float,
    supervised: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Peer i's share ``T_i`` of the DWML inner loss, for every i, as an ``(M,)`` tensor; its sum is the
    inner loss (the paper's Eq. 2, direction as in ``docs/METHODS.md``) of M peers::

        T_i = (1 − α) ω_i S_i  +  α Σ_{j≠i} ω_j KL(sg(p_j) ‖ p_i)
        L1(θ, ω) = Σ_i T_i = (1 − α) Σ_i ω_i S_i  +  α Σ_i Σ_{j≠i} ω_j KL(sg(p_j) ‖ p_i)

    ``S_i = CE(z_i, y)``, or ``supervised[i]`` when given (KD_DWML passes KD losses);
    ``p_i = softmax(z_i / τ)``; no τ² factor (``docs/METHODS.md``'s L1 has none; DML uses τ = 1).
    With ``ω = 1/M`` the sum is DML (Zhang et al. 2018) up to the constant factor 1/M. The targets
    ``sg(p_j)`` are detached, so ``T_i`` reaches only peer i's parameters: the training loop
    optimises each peer on its own term and logs it.

    Computed in O(M) vocabulary-sized work instead of O(M²) pairwise KLs. Write
    ``KL(p_j ‖ p_i) = −H_j − ⟨p_j, log p_i⟩`` with ``−H_j = (1/n) Σ_rv p_j log p_j`` and
    ``⟨a, b⟩ = (1/n) Σ_rv a b``. Then peer i's peer term is

        Σ_{j≠i} ω_j KL(p_j ‖ p_i) = Σ_{j≠i} ω_j (−H_j) − ⟨m_i, log p_i⟩,   m_i = P − ω_i p_i,

    a soft-target cross-entropy against the unnormalised mixture ``m_i`` of the others
    (``P = Σ_j ω_j sg(p_j)`` is built once) plus a constant. The constant carries no
    gradient to θ (the targets are detached) but makes the value equal the pairwise sum
    exactly, and keeps ``∂L1/∂ω_k`` equal to :func:`per_peer_coefficients`' ``La_k`` (``ω``
    is not detached).
    """
    _check_peers(logits, weights)
    log_q = [F.log_softmax(z / tau, dim=-1) for z in logits]  # M × (n, vocab), with gradient
    p = [lq.detach().exp() for lq in log_q]  # M × (n, vocab), the detached targets sg(p_j)
    n = logits[0].shape[0]
    # ⟨p_i, log p_i⟩ with gradient through log p_i: its value is −H_i, and it is the ω_i p_i part of m_i
    self_cross = torch.stack([(pi * lq).sum() / n for pi, lq in zip(p, log_q, strict=True)])  # (M,)
    weighted_neg_entropy = weights * self_cross.detach()  # (M,): ω_j (−H_j)
    mixture = sum(w * pj for w, pj in zip(weights, p, strict=True))  # (n, vocab): P = Σ_j ω_j p_j
    cross = torch.stack([(mixture * lq).sum() / n for lq in log_q]) - weights * self_cross
    # (M,): ⟨m_i, log p_i⟩ = ⟨P, log p_i⟩ − ω_i ⟨p_i, log p_i⟩ with m_i = P − ω_i p_i
    peer_terms = (weighted_neg_entropy.sum() - weighted_neg_entropy) - cross
    if supervised is None and tau == 1.0:  # CE from the log-probabilities already computed: one log-softmax a peer
        _check(logits[0], targets)
        supervised = [F.nll_loss(lq, targets) for lq in log_q]
    supervised_terms = weights * _supervised_terms(logits, targets, supervised)
    return (1 - alpha) * supervised_terms + alpha * peer_terms


def per_peer_coefficients(
    logits: Sequence[torch.Tensor],
    targets: torch.Tensor,
    alpha: float,
    tau: float,
    supervised: Sequence[torch.Tensor] | None = None,
    target_logits: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """The coefficient of ``ω_k`` in the inner loss ``L1`` (:func:`mutual_loss_terms`), for all k, as an
    ``(M,)`` tensor::

        La_k(θ) = (1 − α) S_k + α Σ_{i≠k} KL(sg(p_k) ‖ p_i)

    (peer k's supervised loss plus what the others lose by not matching k), so that
    ``L1(θ, ω) = Σ_k ω_k La_k(θ)`` and ``∇_θ L1 = Σ_k ω_k ∇_θ La_k`` (``docs/METHODS.md``, DWML).

    Cost: with ``C_ki = ⟨sg(p_k), log p_i⟩`` (mean over positions of the row-wise inner
    product), ``La_k = (1 − α) S_k + α [(M − 1)(−H_k) − Σ_{i≠k} C_ki]``. ``C`` is one
    ``(M, n·V) × (n·V, M)`` matrix product: M² dot products over already computed
    ``(n, V)`` tensors, never an M²-sized vocabulary tensor (memory stays O(M n V)).

    ``target_logits``, if given, are the logits whose (detached) distributions are the targets
    ``sg(p_k)``, instead of ``logits`` themselves: ``La_k`` at other parameters with the targets
    held where they were, e.g. ``La_k(θ ± εv)`` for a finite difference that matches the
    stop-gradient derivative ``⟨v, ∇_θ La_k(θ)⟩`` (:func:`babyteach.bilevel.hypergradient_and_outer_loss`).
    """
    m = len(logits)
    _check_peers(logits)
    log_q = torch.stack([F.log_softmax(z / tau, dim=-1) for z in logits]).flatten(1)  # (M, n·vocab)
    if target_logits is None:
        log_p = log_q.detach()
    else:
        _check_peers(target_logits)
        log_p = torch.stack([F.log_softmax(z.detach() / tau, dim=-1) for z in target_logits]).flatten(1).to(log_q.dtype)
    p = log_p.exp()  # (M, n·vocab): the detached targets
    n = logits[0].shape[0]
    neg_entropy = (p * log_p).sum(dim=1) / n  # (M,)
    cross = p @ log_q.T / n  # (M, M): cross[k, i] = ⟨p_k, log p_i⟩
    off_diagonal = 1 - torch.eye(m, dtype=cross.dtype, device=cross.device)
    peer_term = (m - 1) * neg_entropy - (cross * off_diagonal).sum(dim=1)
    return (1 - alpha) * _supervised_terms(logits, targets, supervised) + alpha * peer_term


def ensemble_loss(logits: Sequence[torch.Tensor], weights: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """DWML outer loss ``L2(θ, ω) = CE(Σ_i ω_i z_i, y)``: the ω-weighted logit-space ensemble, τ = 1."""
    _check_peers(logits, weights)
    ensemble = torch.einsum("m,mnv->nv", weights, torch.stack(list(logits)))  # (n, vocab)
    return cross_entropy(ensemble, targets)

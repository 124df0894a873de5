"""DWML's outer loop: the hypergradient of the peer weights ω and its mirror-descent step.

``docs/METHODS.md`` (DWML) models the inner loop by one SGD step of size γ,
``θ'(ω) = θ − γ ∇_θ L1(θ, ω)``, and descends ``ω ↦ L2(θ'(ω), ω)`` on the simplex::

    g, outer_loss = hypergradient_and_outer_loss(
        peers, (train_inputs, train_targets), (dev_inputs, dev_targets), weights, alpha=0.5,
        gamma=current_lr, mode="unrolled", tau=1.0, inner_product="backward")        # (M,), ()
    eta = outer_step_eta(update, n_updates, eta0=0.25, eta_min=0.0025)           # update = 1 … n_updates
    weights = mirror_descent_step(weights, g, eta)

Each peer is a ``torch.nn.Module``; ``logits_fn(module, inputs)`` returns its logits at
the masked positions ``(n_masked, vocab)`` (default :func:`mlm_logits`, for the project's
``RobertaForMaskedLM`` peers and an inputs mapping with ``input_ids``, ``attention_mask``,
``positions``). Peers are evaluated at other parameter values with
``torch.func.functional_call``; their own parameters and ``.grad`` are never changed.
Train/eval mode is the caller's: with dropout on, ``g`` is as stochastic as the losses.

The options (mode, τ, inner product, η₀, η_min) have no defaults here: :class:`babyteach.methods.DWML`
passes its own, which the config schema's ``mutual`` section defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from babyteach.losses import ensemble_loss, per_peer_coefficients
from babyteach.models import masked_logits

#: ``(inputs, targets)``: whatever ``logits_fn`` takes, and the targets ``(n_masked,)``.
Batch = tuple[Any, torch.Tensor]
LogitsFn = Callable[[nn.Module, Any], torch.Tensor]
HYPERGRADIENT_MODES = ("unrolled", "first_order")
#: How the inner products ⟨∇_θ L2, ∇_θ La_k⟩ of Eq. 3 are computed (docs/METHODS.md allows both).
INNER_PRODUCTS = ("backward", "finite_difference")
#: The finite difference's step along v = ∇_θ L2 is ε = FD_STEP / ‖v‖ (docs/METHODS.md).
FD_STEP = 0.01


def mlm_logits(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Masked-position logits of a ``RobertaForMaskedLM`` (see :func:`babyteach.models.masked_logits`)."""
    return masked_logits(model, inputs["input_ids"], inputs.get("attention_mask"), inputs["positions"])


class _Bound(nn.Module):
    """``logits_fn`` bound to one peer, so ``functional_call`` can swap the peer's parameters."""

    def __init__(self, model: nn.Module, logits_fn: LogitsFn) -> None:
        super().__init__()
        self.model = model
        self.logits_fn = logits_fn

    def forward(self, inputs: Any) -> torch.Tensor:
        return self.logits_fn(self.model, inputs)


def _peer_logits(
    models: Sequence[nn.Module], params: Sequence[dict[str, torch.Tensor]], inputs: Any, logits_fn: LogitsFn
) -> list[torch.Tensor]:
    """Each peer's logits with its parameters replaced by ``params[i]`` (tied weights stay tied)."""
    return [
        functional_call(_Bound(model, logits_fn), {f"model.{name}": value for name, value in p.items()}, (inputs,))
        for model, p in zip(models, params, strict=True)
    ]


def _split(flat: Sequence[torch.Tensor], params: Sequence[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """``flat`` (every peer's tensors in order) regrouped as one name → tensor mapping per peer."""
    grouped, start = [], 0
    for peer in params:
        grouped.append(dict(zip(peer, flat[start : start + len(peer)], strict=True)))
        start += len(peer)
    return grouped


def _zeros_for_none(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if g is None else g for p, g in zip(like, grads, strict=True)]


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def hypergradient_and_outer_loss(
    models: Sequence[nn.Module],
    batch_train: Batch,
    batch_dev: Batch,
    weights: torch.Tensor,
    alpha: float,
    gamma: float,
    mode: str,
    *,
    tau: float,
    inner_product: str,
    logits_fn: LogitsFn = mlm_logits,
    supervised: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hypergradient ``g`` (M,) of ``docs/METHODS.md``'s Eq. 3, and the outer loss ``L2(θ', ω)``::

        g_k = ∂L2/∂ω_k (θ', ω) − γ ⟨ ∇_θ L2(θ', ω), ∇_θ La_k(θ) ⟩

    with ``La_k`` from :func:`babyteach.losses.per_peer_coefficients` on ``batch_train``
    and ``L2`` from :func:`babyteach.losses.ensemble_loss` on ``batch_dev``.
    ``mode="unrolled"``: ``θ' = θ − γ Σ_k ω_k ∇_θ La_k(θ)`` (one virtual SGD step on L1);
    ``mode="first_order"``: ``θ' = θ``. ``supervised(logits, targets)``, if given, replaces
    each peer's ``CE`` in ``La_k`` (KD_DWML passes a KD loss against the teacher).

    ``inner_product`` chooses how the M inner products are computed:

    - ``"backward"``: M backward passes give every ``∇_θ La_k`` exactly (memory: M copies of all
      peers' parameters). Cost: a forward of every peer on each batch and M + 1 backward passes.
    - ``"finite_difference"``: ``⟨v, ∇_θ La_k(θ)⟩ ≈ [La_k(θ + εv) − La_k(θ − εv)] / 2ε`` with
      ``v = ∇_θ L2(θ')`` and ``ε = 0.01 / ‖v‖``, all k from the same two forward passes
      (docs/METHODS.md), the detached targets ``sg(p_k)`` of ``La_k`` held at θ (moving them too would
      difference another function than the one Eq. 3 differentiates). Cost: one backward of
      ``L1`` for θ' (in ``first_order`` mode a forward without gradient instead, for the targets),
      a forward and backward of ``L2``, and two forwards without gradient (``bench/dwml_step.py``
      measures it against ``"backward"``). The two forwards run in float32 (a bf16 difference of
      nearby losses would be rounding noise) with the dropout draws of the train forward, so
      they difference one function.
    """
    if mode not in HYPERGRADIENT_MODES:
        raise ValueError(f"mode must be one of {HYPERGRADIENT_MODES}, got {mode!r}")
    if inner_product not in INNER_PRODUCTS:
        raise ValueError(f"inner_product must be one of {INNER_PRODUCTS}, got {inner_product!r}")
    m = len(models)
    if weights.shape != (m,):
        raise ValueError(f"expected weights of shape ({m},), got {tuple(weights.shape)}")
    weights = weights.detach()
    params = [{name: p for name, p in model.named_parameters() if p.requires_grad} for model in models]
    flat = [p for peer in params for p in peer.values()]
    device = flat[0].device
    by_difference = inner_product == "finite_difference"

    train_inputs, train_targets = batch_train

    def coefficients_of(logits: list[torch.Tensor], target_logits: list[torch.Tensor] | None = None) -> torch.Tensor:
        supervised_losses = None if supervised is None else [supervised(z, train_targets) for z in logits]
        return per_peer_coefficients(logits, train_targets, alpha, tau, supervised_losses, target_logits)  # (M,)

    # ∇_θ La_k(θ) for every k (M backward passes), or only ∇_θ L1 = Σ_k ω_k ∇_θ La_k for θ' (one)
    train_rng = _rng_state(device)  # the finite difference replays this forward's dropout draws
    coefficient_grads: list[list[torch.Tensor]] = []
    train_logits: list[torch.Tensor] | None = None
    if not by_difference or mode == "unrolled":
        train_logits = _peer_logits(models, params, train_inputs, logits_fn)
        coefficients = coefficients_of(train_logits)
        if by_difference:
            l1_grad = _zeros_for_none(
                torch.autograd.grad((weights * coefficients).sum(), flat, allow_unused=True), flat
            )
        else:
            for k in range(m):
                grads = torch.autograd.grad(coefficients[k], flat, retain_graph=k < m - 1, allow_unused=True)
                coefficient_grads.append(_zeros_for_none(grads, flat))
            if mode == "unrolled":
                l1_grad = [sum(weights[k] * coefficient_grads[k][i] for k in range(m)) for i in range(len(flat))]

    # θ': the virtual step on L1, or θ itself
    if mode == "unrolled":
        shifted = [(p.detach() - gamma * g).requires_grad_() for p, g in zip(flat, l1_grad, strict=True)]
    else:
        shifted = [p.detach().requires_grad_() for p in flat]

    # one more backward pass: ∂L2/∂ω and ∇_θ L2 at (θ', ω)
    dev_inputs, dev_targets = batch_dev
    omega = weights.clone().requires_grad_()
    outer = ensemble_loss(_peer_logits(models, _split(shifted, params), dev_inputs, logits_fn), omega, dev_targets)
    grad_omega, *grad_theta = torch.autograd.grad(outer, [omega, *shifted], allow_unused=True)
    v = _zeros_for_none(grad_theta, shifted)

    if by_difference:
        norm = torch.sqrt(sum((g.double() * g.double()).sum() for g in v))
        eps = FD_STEP / norm.clamp_min(torch.finfo(torch.float32).tiny)  # a tensor: no host read

        def peer_logits_at(moved: list[torch.Tensor]) -> list[torch.Tensor]:
            _set_rng_state(train_rng, device)  # the dropout draws of the train forward, every time
            with torch.no_grad(), torch.autocast(device.type, enabled=False):
                return [
                    z.float() if z.dtype != torch.float64 else z
                    for z in _peer_logits(models, _split(moved, params), train_inputs, logits_fn)
                ]

        # the targets sg(p_k) stay at θ: the difference is then the stop-gradient derivative of Eq. 3
        targets_at_theta = (
            [z.detach() for z in train_logits]
            if train_logits is not None
            else peer_logits_at([p.detach() for p in flat])
        )
        along = [
            coefficients_of(
                peer_logits_at([p.detach() + sign * eps.to(p.dtype) * g for p, g in zip(flat, v, strict=True)]),
                targets_at_theta,
            )
            for sign in (1.0, -1.0)
        ]
        inner = ((along[0] - along[1]) / (2 * eps)).to(grad_omega.dtype)  # (M,)
    else:
        inner = torch.stack(
            [sum((a * b).sum() for a, b in zip(v, coefficient_grads[k], strict=True)) for k in range(m)]
        )  # (M,): ⟨∇_θ L2(θ'), ∇_θ La_k(θ)⟩
    return (grad_omega - gamma * inner).detach(), outer.detach()


def mirror_descent_log_step(
    log_weights: torch.Tensor, g: torch.Tensor, eta: float, clip: float | None = None
) -> torch.Tensor:
    """Mirror descent (``docs/METHODS.md``, Eq. 4) on ``log ω``: returns the new ``log ω``, float64, on its device.

    ``log ω_k ← log ω_k − η g_k − log Σ_j exp(log ω_j − η g_j)``, with ``g`` first clipped to
    ``[−clip, clip]`` when ``clip`` is given. Why log space in float64: ω_k itself underflows
    float32 at ≈ 1e-45 (``log ω_k`` ≈ −103) and float64 at ≈ 5e-324 (≈ −745), after which the
    multiplicative update can never raise it again; ``log ω_k`` stays finite and exact to
    float64 precision however far a run drives it, so a peer pushed down for many outer steps
    comes back when its hypergradient turns. An explicit ``log ω_k = −inf`` (ω_k = 0, a peer
    excluded on purpose) stays −inf; at least one weight must be positive (all −inf gives NaN,
    which the training loop reports as a non-finite outer step). Computed where ``log_weights``
    lives, without reading anything back to the host.
    """
    if log_weights.shape != g.shape or log_weights.dim() != 1:
        raise ValueError(
            f"expected weights and g of one shape (M,), got {tuple(log_weights.shape)} and {tuple(g.shape)}"
        )
    log_weights = log_weights.detach().to(torch.float64)
    g = g.detach().to(log_weights.device, torch.float64)
    if clip is not None:
        g = g.clamp(-clip, clip)
    return torch.log_softmax(log_weights - eta * g, dim=0)


def mirror_descent_step(weights: torch.Tensor, g: torch.Tensor, eta: float, clip: float | None = None) -> torch.Tensor:
    """Exponentiated-gradient step on the simplex (``docs/METHODS.md``, Eq. 4), in ``weights``' dtype and device.

    ``ω_k ← ω_k exp(−η g_k) / Σ_j ω_j exp(−η g_j)``, with ``g`` first clipped to
    ``[−clip, clip]`` when ``clip`` is given; computed by :func:`mirror_descent_log_step`
    (float64, so large ``η g`` cannot overflow). A zero weight stays zero. The result is
    rounded to ``weights``' dtype, where a tiny weight may underflow to 0 for good: a state
    carried across many steps belongs in log space (:func:`mirror_descent_log_step`, as
    :class:`babyteach.methods.DWML` keeps it). Returns a new tensor.
    """
    if weights.shape != g.shape or weights.dim() != 1:
        raise ValueError(f"expected weights and g of one shape (M,), got {tuple(weights.shape)} and {tuple(g.shape)}")
    log_weights = weights.detach().to(torch.float64).log()
    return mirror_descent_log_step(log_weights, g, eta, clip).exp().to(weights.dtype)


def eta_schedule(step: int, total: int, eta0: float, eta_min: float) -> float:
    """Cosine annealing of the mirror-descent step size from ``eta0`` (step 0) to ``eta_min`` (step ``total``).

    ``η = η_min + (η_0 − η_min)(1 + cos(π · step / total)) / 2`` (``docs/METHODS.md``; the config's
    ``mutual.eta0`` and ``mutual.eta_min``). A run's outer steps take it through :func:`outer_step_eta`.
    """
    if total < 1 or not 0 <= step <= total:
        raise ValueError(f"need total ≥ 1 and 0 ≤ step ≤ total, got step {step}, total {total}")
    return eta_min + (eta0 - eta_min) * (1 + math.cos(math.pi * step / total)) / 2


def outer_step_count(total_steps: int, every: int) -> int:
    """How many outer steps a run of ``total_steps`` optimiser steps makes: the steps ``s ≤ total_steps``
    with ``s % every == 0`` (a remainder of fewer than ``every`` steps has none)."""
    if total_steps < 0 or every < 1:
        raise ValueError(f"need total_steps ≥ 0 and every ≥ 1, got {total_steps} and {every}")
    return total_steps // every


def outer_step_eta(update: int, n_updates: int, eta0: float, eta_min: float) -> float:
    """The step size η of outer step ``update`` (1 … ``n_updates``) of a run.

    The cosine of :func:`eta_schedule` laid over the run's own outer steps: the first uses
    ``eta0``, the last exactly ``eta_min``, so the annealing ``docs/METHODS.md`` specifies is
    completed however many outer steps there are. A run with a single outer step uses
    ``eta0`` (its first step; there is nothing to anneal).
    """
    if n_updates < 1 or not 1 <= update <= n_updates:
        raise ValueError(f"need 1 ≤ update ≤ n_updates, got update {update} of {n_updates}")
    if n_updates == 1:
        return eta0
    return eta_schedule(update - 1, n_updates - 1, eta0, eta_min)

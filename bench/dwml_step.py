"""Benchmark: the cost of mutual learning against training the same peers alone.

Three ratios, each measured side by side in one run on the same masked batches (CPU by
default), medians after warm-up:

(a) one DWML inner step of M peers (:func:`babyteach.losses.mutual_loss_terms` through the
    loop's ``make_method("dwml").step_loss``, backward, M AdamW steps) against the sum of M
    independent baseline steps of the same peers on the same batch (target ≤ 1.25×);
(b) the O(M) mutual term against the naive double loop of pairwise KLs, forward and
    backward on the peers' masked-position logits (same value checked first);
(c) the outer step (hypergradient + mirror step) amortised over ``weight_update_every``
    inner steps: ``(inner + outer / every) / inner``, with Eq. 3's inner products by M backward
    passes and by a finite difference (``mutual.inner_product``), side by side.

::

    python bench/dwml_step.py                         # 4 peers, vocab 50265, 8 × 128 tokens
    python bench/dwml_step.py --every 10 --mode first_order
    python bench/dwml_step.py --quick                 # smoke run
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from babyteach.losses import mutual_loss_terms
from babyteach.methods import OuterStep, StepContext, make_method
from babyteach.models import Architecture, build_model
from babyteach.train import TrainConfig, _optimizer
from train_step import masked_batches, random_blocks, time_alternately

#: Four peers shrinking like the searched ones (targets N/2 … N/5 of a small teacher).
PEERS = (Architecture(4, 4, 256), Architecture(3, 4, 256), Architecture(3, 4, 192), Architecture(2, 4, 192))


def naive_mutual_terms(
    logits: list[torch.Tensor], targets: torch.Tensor, weights: torch.Tensor, alpha: float
) -> torch.Tensor:
    """Each peer's share of L1 written as docs/METHODS.md writes it: M(M − 1) pairwise KLs."""
    terms = []
    for i, z_i in enumerate(logits):
        term = (1 - alpha) * weights[i] * F.cross_entropy(z_i, targets)
        log_q = F.log_softmax(z_i, dim=-1)  # (n_masked, vocab)
        for j, z_j in enumerate(logits):
            if j != i:
                log_p = F.log_softmax(z_j.detach(), dim=-1)
                term = term + alpha * weights[j] * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
        terms.append(term)
    return torch.stack(terms)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=4, choices=range(1, len(PEERS) + 1), help="M (default: 4)")
    parser.add_argument("--vocab-size", type=int, default=50265, help="vocabulary (default: %(default)s)")
    parser.add_argument("--block", type=int, default=128, help="tokens per block (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="blocks per batch (default: %(default)s)")
    parser.add_argument("--every", type=int, default=10, help="weight_update_every (default: %(default)s)")
    parser.add_argument(
        "--mode",
        default="unrolled",
        choices=("unrolled", "first_order"),
        help="hypergradient mode (default: %(default)s)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches, masking (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny peers, vocab 1000, 1 + 2 rounds")
    args = parser.parse_args(argv)
    peers = PEERS[: args.peers]
    if args.quick:
        peers = tuple(Architecture(a.layers, 2, 32) for a in peers)
        args.vocab_size, args.batch, args.warmup, args.repeats = 1000, 2, 1, 2

    cpu = torch.device("cpu")
    cfg = TrainConfig(token_budget=1, block_size=args.block, seed=args.seed)
    batches = masked_batches(
        random_blocks(4, args.batch, args.block, args.vocab_size, args.seed), args.vocab_size, args.seed
    )
    names = [f"peer-{i + 1}" for i in range(len(peers))]

    def fresh_peers() -> tuple[dict, dict]:
        models = {
            n: build_model(a, args.vocab_size, args.block, seed=args.seed + i).train()
            for i, (n, a) in enumerate(zip(names, peers, strict=True))
        }
        return models, {n: _optimizer(list(m.parameters()), cfg) for n, m in models.items()}

    dwml_models, dwml_opts = fresh_peers()
    alone_models, alone_opts = fresh_peers()
    dwml = make_method("dwml", weight_update_every=args.every, hypergradient=args.mode)
    dwml.start(names, cpu)
    dwml_fd = make_method(
        "dwml", weight_update_every=args.every, hypergradient=args.mode, inner_product="finite_difference"
    )
    dwml_fd.start(names, cpu)
    baseline = make_method("baseline")

    def dwml_step(i: int) -> None:
        for opt in dwml_opts.values():
            opt.zero_grad(set_to_none=True)
        losses = dwml.step_loss(StepContext(batches[i % len(batches)], dwml_models, {}))
        sum(losses.values()).backward()
        for opt in dwml_opts.values():
            opt.step()

    def alone_steps(i: int) -> None:
        for name, model in alone_models.items():
            alone_opts[name].zero_grad(set_to_none=True)
            loss = baseline.step_loss(StepContext(batches[i % len(batches)], {name: model}, {}))[name]
            loss.backward()
            alone_opts[name].step()

    def outer_step(i: int, method=dwml) -> None:
        ctx = StepContext(batches[i % len(batches)], dwml_models, {})
        method.outer_step(
            OuterStep(ctx, batches[(i + 1) % len(batches)], gamma=5e-4, step=args.every, total_steps=100 * args.every)
        )

    # (b) on fixed logits of the peers: value check, then forward + backward of each form
    batch = batches[0]
    with torch.no_grad():
        ctx = StepContext(batch, dwml_models, {})
        leaves = [ctx.student_logits(n).requires_grad_() for n in names]  # M × (n_masked, vocab)
    weights = torch.full((len(names),), 1 / len(names))
    fast_value = mutual_loss_terms(leaves, batch.targets, weights, 0.5, 1.0)
    naive_value = naive_mutual_terms(leaves, batch.targets, weights, 0.5)
    assert torch.allclose(fast_value, naive_value, rtol=1e-4, atol=1e-5), (fast_value, naive_value)

    def fast_term(i: int) -> None:
        mutual_loss_terms(leaves, batch.targets, weights, 0.5, 1.0).sum().backward()

    def naive_term(i: int) -> None:
        naive_mutual_terms(leaves, batch.targets, weights, 0.5).sum().backward()

    step_times = time_alternately(
        {"dwml": dwml_step, "alone": alone_steps, "outer": outer_step, "outer_fd": lambda i: outer_step(i, dwml_fd)},
        args.warmup,
        args.repeats,
    )
    term_times = time_alternately({"fast": fast_term, "naive": naive_term}, args.warmup, args.repeats * 3)

    n_masked = batch.targets.numel()
    print(
        f"{len(peers)} peers {', '.join(a.describe() for a in peers)}; vocab {args.vocab_size}; batch "
        f"{args.batch} × {args.block} tokens (~{n_masked} masked); {torch.get_num_threads()} threads; "
        f"median of {args.repeats} after {args.warmup} warm-up"
    )
    print("| measurement | seconds |")
    print("|---|---|")
    for label, value in (
        ("DWML inner step, all peers", step_times["dwml"]),
        ("independent baseline steps, summed", step_times["alone"]),
        (f"outer step ({args.mode}, inner products by backward)", step_times["outer"]),
        (f"outer step ({args.mode}, inner products by finite difference)", step_times["outer_fd"]),
        ("mutual term, O(M) (fwd + bwd)", term_times["fast"]),
        ("mutual term, naive pairwise (fwd + bwd)", term_times["naive"]),
    ):
        print(f"| {label} | {value:.4f} |")
    inner = step_times["dwml"]
    print(f"(a) DWML step / independent steps = {inner / step_times['alone']:.3f}× (target ≤ 1.25×)")
    print(f"(b) naive / O(M) mutual term = {term_times['naive'] / term_times['fast']:.2f}×")
    for key, label in (("outer", "backward"), ("outer_fd", "finite difference")):
        print(
            f"(c) outer step, {label} = {step_times[key] / inner:.2f} inner steps; amortised at every "
            f"{args.every}: {(inner + step_times[key] / args.every) / inner:.3f}× the inner step"
        )


if __name__ == "__main__":
    main()

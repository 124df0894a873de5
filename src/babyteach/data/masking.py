"""Masked-language-model corruption of a batch of token blocks (METHODS.md).

Each eligible (non-special) token is selected for prediction independently with probability
``mask_prob`` (a Bernoulli draw per token, as RoBERTa/BERT in Hugging Face's MLM collator;
the number of predicted positions therefore varies a little from batch to batch). Of the
selected positions 80 % become ``<mask>``, 10 % a random non-special token and 10 % stay
unchanged. Only the selected positions are predicted: the sparse MLM head computes logits
at ``positions`` alone::

    batch = mask_tokens(ids, generator, 0.15, mask_id=4, vocab_size=50265, special_ids=range(5))
    hidden = model(batch.input_ids)                           # (batch, seq, hidden)
    logits = head(hidden.flatten(0, 1)[batch.positions])      # (n_masked, vocab)
    loss = cross_entropy(logits, batch.targets)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Shares of the selected positions replaced by ``<mask>``, by a random token; the rest stay.
MASK_SHARE = 0.8
RANDOM_SHARE = 0.1


@dataclass(frozen=True)
class MaskedBatch:
    """A corrupted batch and what to predict."""

    #: The corrupted copy of the input, same shape ``(batch, seq)``.
    input_ids: torch.Tensor
    #: Flat indices into ``input_ids.view(-1)`` of the predicted positions, ascending, ``(n_masked,)``.
    positions: torch.Tensor
    #: Original ids at ``positions``, ``(n_masked,)``.
    targets: torch.Tensor


def mask_tokens(
    input_ids: torch.Tensor,
    generator: torch.Generator,
    mask_prob: float,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int],
) -> MaskedBatch:
    """Select positions for MLM and corrupt them 80/10/10 (``<mask>`` / random / unchanged).

    Positions holding an id in ``special_ids`` are never selected, and random replacements
    are drawn uniformly from the ids in ``[0, vocab_size)`` that are not special. If the
    Bernoulli draws select nothing while some position is eligible, one eligible position is
    chosen uniformly (so a loss over the predicted positions is always defined). All draws
    come from ``generator``, which must live on ``input_ids``'s device: the same generator
    state gives the same result. ``input_ids`` is not modified.
    """
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must lie in (0, 1), got {mask_prob}")
    device = input_ids.device
    special = torch.as_tensor(list(special_ids), dtype=input_ids.dtype, device=device)
    eligible = ~torch.isin(input_ids, special)
    is_special_id = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    is_special_id[special[special < vocab_size]] = True
    replacement_ids = torch.nonzero(~is_special_id).flatten()
    if replacement_ids.numel() == 0:
        raise ValueError("every id of the vocabulary is special: no random replacement is possible")

    draws = torch.rand(input_ids.shape, generator=generator, device=device)
    selected = eligible & (draws < mask_prob)
    flat_eligible = eligible.flatten()
    if not selected.any() and flat_eligible.any():
        candidates = torch.nonzero(flat_eligible).flatten()
        pick = torch.randint(candidates.numel(), (1,), generator=generator, device=device)
        selected.view(-1)[candidates[pick]] = True

    positions = torch.nonzero(selected.flatten()).flatten()  # (n_masked,)
    targets = input_ids.flatten()[positions]
    action = torch.rand(positions.shape, generator=generator, device=device)
    random_ids = replacement_ids[
        torch.randint(replacement_ids.numel(), positions.shape, generator=generator, device=device)
    ]
    new_ids = torch.where(action < MASK_SHARE, torch.full_like(targets, mask_id), targets)
    new_ids = torch.where((action >= MASK_SHARE) & (action < MASK_SHARE + RANDOM_SHARE), random_ids, new_ids)
    corrupted = input_ids.flatten().clone()
    corrupted[positions] = new_ids
    return MaskedBatch(input_ids=corrupted.view(input_ids.shape), positions=positions, targets=targets)

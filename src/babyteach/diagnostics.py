"""What a trained masked LM takes from the context: its dev loss split by what each predicted position shows.

Of the predicted positions 80 % show ``<mask>``, 10 % a random id and 10 % the true id
(:mod:`babyteach.data.masking`). At a ``<mask>`` a model that ignores the context can do no better
than the unigram distribution, so its loss there (``mask``) under the unigram cross-entropy
(:func:`babyteach.data.unigram.unigram_baseline`) is what it learned from the context, and only
that part matters for pseudo-log-likelihood scoring (BLiMP masks every scored token); the loss at
the kept positions (``kept``) shows whether it learned to copy its input. The overall dev loss
mixes the two, which is why a model stalled on the context can still sit ~0.5 nat under the
unigram line (docs/RECIPE.md)::

    from babyteach.diagnostics import loss_by_corruption
    split = loss_by_corruption(model, Path("results/2024-10M/shards"), TrainConfig(dev_blocks=256))
    split.mask, split.random, split.kept, split.overall     # nats
    split.context_gain        # unigram loss − model loss at the same <mask> positions
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import RobertaForMaskedLM

from babyteach.data.batches import DeviceSplit, dev_loss_batches
from babyteach.data.shards import PackedBlocks, dev_sample, read_meta
from babyteach.data.tokenizer import MASK
from babyteach.data.unigram import smoothed_unigram
from babyteach.models import masked_logits
from babyteach.train_config import TrainConfig


@dataclass(frozen=True)
class CorruptionLosses:
    """Mean dev masked-LM loss (nats) per kind of predicted position, and over all of them."""

    mask: float  # positions showing <mask>
    random: float  # positions showing a random id (other than the target)
    kept: float  # positions showing their true id
    overall: float  # all predicted positions
    counts: dict[str, int]  # predicted positions of each kind
    #: Loss of the smoothed train unigram at the same ``<mask>`` positions (the paired context-free
    #: reference; :func:`babyteach.data.unigram.smoothed_unigram`); ``mask_reference − mask`` is the
    #: context gain, free of the sampling noise of the positions.
    mask_reference: float

    @property
    def context_gain(self) -> float:
        """Nats per ``<mask>`` position the model gains over the unigram at the same positions."""
        return self.mask_reference - self.mask


def loss_by_corruption(model: RobertaForMaskedLM, shard_dir: Path, cfg: TrainConfig) -> CorruptionLosses:
    """Split the dev loss of ``model`` by corruption kind, on the dev loss's own blocks and masks.

    The batches are the training loop's dev-loss batches of a run with ``cfg``
    (:func:`babyteach.data.batches.dev_loss_batches` with its ``block_size``, ``mask_prob``,
    ``seed``, ``batch_size`` and ``dev_blocks``: blocks spread over the dev split, ``k`` predicted
    positions per block from the train split), so ``overall`` is that run's final dev loss (up to
    the precision it ran in). Taking the run's own config, not separate defaults, keeps the two
    from drifting apart (a run with seed 1 masks its dev blocks with seed 1). A random replacement
    that happens to equal its target counts as kept. The model runs in eval mode on its own device,
    in fp32; its mode is restored.
    """
    meta = read_meta(shard_dir)
    device = next(model.parameters()).device
    with np.errstate(divide="ignore"):  # special ids have probability 0 and are never targets
        reference = -torch.from_numpy(np.log(smoothed_unigram(shard_dir))).to(device)  # (vocab,): unigram loss per id
    k = DeviceSplit(shard_dir, "train", cfg.block_size, torch.device("cpu")).predictions(cfg.mask_prob)
    batches = dev_loss_batches(
        DeviceSplit(shard_dir, "dev", cfg.block_size, device),
        k,
        cfg.seed,
        cfg.batch_size,
        cfg.dev_blocks,
        meta["special_tokens"],
        int(meta["vocab_size"]),
    )
    mask_id = int(meta["special_tokens"][MASK])
    sums = {kind: torch.zeros((), dtype=torch.float64, device=device) for kind in ("mask", "random", "kept")}
    counts = {kind: torch.zeros((), dtype=torch.int64, device=device) for kind in sums}
    reference_sum = torch.zeros((), dtype=torch.float64, device=device)
    training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            logits = masked_logits(model, batch.input_ids, None, batch.positions)  # (n_masked, vocab)
            losses = F.cross_entropy(logits.float(), batch.targets, reduction="none")  # (n_masked,)
            shown = batch.input_ids.gather(1, batch.positions).flatten()  # (n_masked,): what each position shows
            kinds = {"mask": shown == mask_id, "kept": shown == batch.targets}
            kinds["random"] = ~(kinds["mask"] | kinds["kept"])
            for kind, chosen in kinds.items():
                sums[kind] += losses[chosen].double().sum()
                counts[kind] += chosen.sum()
            reference_sum += reference[batch.targets[kinds["mask"]]].sum()
    model.train(training)
    sums, counts = {k: float(v) for k, v in sums.items()}, {k: int(v) for k, v in counts.items()}
    total = sum(counts.values())
    return CorruptionLosses(
        **{kind: sums[kind] / counts[kind] if counts[kind] else float("nan") for kind in sums},
        overall=sum(sums.values()) / total,
        counts=counts,
        mask_reference=float(reference_sum) / counts["mask"] if counts["mask"] else float("nan"),
    )


def hidden_similarity(
    model: RobertaForMaskedLM, shard_dir: Path, block_size: int = 128, blocks: int = 16
) -> list[float]:
    """Mean cosine similarity between the hidden states of different positions of a block, per layer.

    Entry 0 is the embedding output, entry ``l`` the output of layer ``l``; the mean is over all
    pairs of distinct positions of ``blocks`` dev blocks spread over the split (unmasked). Near 1, every
    position carries the same vector: the representations have collapsed (Dong et al. 2021, "Attention
    is not all you need: pure attention loses rank"), and a model can neither copy its input token nor
    tell positions apart, the signature of the CPU plateau in docs/RECIPE.md.
    """
    dev = PackedBlocks(shard_dir, "dev", block_size)
    ids = torch.from_numpy(dev.get_blocks(dev_sample(len(dev), blocks)))
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    with torch.no_grad():
        states = model.roberta(input_ids=ids.to(device), output_hidden_states=True).hidden_states
    model.train(training)
    similarities = []
    for hidden in states:  # each (blocks, seq, H)
        unit = F.normalize(hidden.float(), dim=-1)
        cos = unit @ unit.transpose(1, 2)  # (blocks, seq, seq)
        seq = cos.shape[-1]
        similarities.append(
            float((cos.sum(dim=(1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(dim=1)).mean() / (seq * (seq - 1)))
        )
    return similarities

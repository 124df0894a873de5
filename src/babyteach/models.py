"""RoBERTa-style masked LMs: architecture, config, analytic size and FLOPs, sparse MLM head, SD exits.

Every model in the project is a ``transformers.RobertaForMaskedLM`` built from an
:class:`Architecture` (layers × heads × hidden, intermediate = 4 × hidden) plus the
tokenizer's vocabulary size and the training block size::

    arch = Architecture(layers=12, heads=12, hidden=768)          # RoBERTa-base
    model = build_model(arch, vocab_size=16384, block_size=128, seed=0)
    assert count_parameters(arch, 16384, 128) == sum(p.numel() for p in model.parameters())

:func:`count_parameters` is the only parameter count in the project (the architecture
search and the tables use it); :func:`masked_logits` runs the LM head on the masked
positions only (``docs/METHODS.md``: all losses are computed on masked positions);
:class:`SDExits` holds the training-only auxiliary heads of self-distillation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import RobertaConfig, RobertaForMaskedLM

from babyteach.errors import InputError

#: RoBERTa numbers positions from ``pad_token_id + 1``, so a block of n tokens needs n + 2 rows.
POSITION_OFFSET = 2

#: Maximum number of SD sections (Zhang et al. 2019 use 4 exits).
SD_MAX_SECTIONS = 4


@dataclass(frozen=True)
class Architecture:
    """The searched shape of a RoBERTa encoder; vocabulary and positions come from the data."""

    layers: int  # number of transformer blocks
    heads: int  # attention heads per block; must divide ``hidden``
    hidden: int  # model width; the feed-forward width is 4 × hidden

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"architecture {self.describe()}: {name} must be a positive integer, got {value!r}; "
                    "fix the config entry that defines this architecture"
                )
        if self.hidden % self.heads:
            raise InputError(
                f"architecture {self.describe()}: hidden ({self.hidden}) must be divisible by heads "
                f"({self.heads}); fix the config entry that defines this architecture"
            )

    @property
    def intermediate(self) -> int:
        """Feed-forward width: 4 × hidden, as in BERT/RoBERTa."""
        return 4 * self.hidden

    def describe(self) -> str:
        """Short human-readable form, e.g. ``L12-H12-D768``."""
        return f"L{self.layers}-H{self.heads}-D{self.hidden}"

    def to_dict(self) -> dict[str, int]:
        """JSON-able form: ``{"layers": .., "heads": .., "hidden": ..}``."""
        return asdict(self)

    @classmethod
    def from_mapping(cls, mapping: Any, key: str) -> Architecture:
        """Build from a config mapping with exactly ``layers``, ``heads``, ``hidden``.

        ``key`` is the config key the mapping came from (e.g. ``search.teacher``); every
        error names it.
        """
        expected = {"layers", "heads", "hidden"}
        if not isinstance(mapping, dict) or set(mapping) != expected:
            got = sorted(mapping) if isinstance(mapping, dict) else repr(mapping)
            raise InputError(f"{key}: expected a mapping with keys {sorted(expected)}, got {got}")
        try:
            return cls(**mapping)
        except InputError as err:
            raise InputError(f"{key}: {err}") from None


def build_config(
    arch: Architecture,
    vocab_size: int,
    block_size: int,
    pad_token_id: int = 1,
    bos_token_id: int = 0,
    eos_token_id: int = 2,
    dropout: float = 0.1,
) -> RobertaConfig:
    """The ``RobertaConfig`` of ``arch``: one token type, SDPA attention, tied embeddings,
    ``dropout`` on hidden states and attention probabilities (RoBERTa: 0.1).

    ``block_size`` is the longest sequence the model will see (special tokens included);
    RoBERTa's position ids start at ``pad_token_id + 1``, hence ``block_size + 2`` rows.
    """
    if vocab_size < 1 or block_size < 1:
        raise InputError(f"vocab_size ({vocab_size}) and block_size ({block_size}) must be positive")
    return RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        intermediate_size=arch.intermediate,
        max_position_embeddings=block_size + POSITION_OFFSET,
        type_vocab_size=1,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def build_model(
    arch: Architecture, vocab_size: int, block_size: int, seed: int, dropout: float = 0.1
) -> RobertaForMaskedLM:
    """A randomly initialised ``RobertaForMaskedLM`` (no download); same seed, same weights.

    The global torch RNG is left as it was.
    """
    config = build_config(arch, vocab_size, block_size, dropout=dropout)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RobertaForMaskedLM(config)


def count_parameters(arch: Architecture, vocab_size: int, block_size: int) -> int:
    """Parameters of ``build_model(arch, vocab_size, block_size, ...)``, in closed form.

    With V = vocab_size, P = block_size + 2 positions, H = hidden, L = layers, 4H feed-forward:

    - embeddings: word V·H + position P·H + token type 1·H + LayerNorm 2H
    - per layer: Q, K, V, O 4(H² + H) + attention LayerNorm 2H
      + feed-forward H·4H + 4H + 4H·H + H + output LayerNorm 2H  =  12H² + 13H
    - MLM head: dense H² + H, LayerNorm 2H, decoder tied to the word embeddings (0) + bias V

    total = H·(V + P + 3) + L·(12H² + 13H) + H² + 3H + V.
    Attention heads do not change the count. Tied weights count once, as
    ``model.parameters()`` does.
    """
    h, v, p = arch.hidden, vocab_size, block_size + POSITION_OFFSET
    embeddings = h * (v + p + 1) + 2 * h
    layer = 12 * h * h + 13 * h
    head = h * h + h + 2 * h + v
    return embeddings + arch.layers * layer + head


def flops_per_token(arch: Architecture, vocab_size: int, block_size: int, head_fraction: float = 1.0) -> int:
    """Analytic training FLOPs per token (forward + backward), for MFU and Table 9.

    ``6 · N_matmul + 12 · L · T · H`` with T = block_size (Kaplan et al. 2020; PaLM's MFU):

    - ``N_matmul`` = weights used in matrix multiplies per token: 12·H² per layer
      (Q, K, V, O and the 4H feed-forward), plus the MLM head's dense H² and tied decoder
      V·H, the head scaled by ``head_fraction`` (the share of tokens that run the head:
      1.0 for a dense head, the masking rate, e.g. 0.15, with :func:`masked_logits`).
      Each weight costs 2 FLOPs forward and 4 backward, hence the 6.
    - attention scores Q·Kᵀ and the weighted sum A·V: 2·T·H FLOPs each per token and layer
      forward, ×3 for training, over the full (bidirectional) block.

    Embedding lookups, biases, LayerNorms, softmax and GELU are ignored (a few percent).
    """
    h, t = arch.hidden, block_size
    encoder = 12 * h * h * arch.layers
    head = (h * h + vocab_size * h) * head_fraction
    attention = 12 * arch.layers * t * h
    return round(6 * (encoder + head) + attention)


def _select(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rows of ``hidden`` (batch, seq, H) at ``positions``, as ``(n_masked, H)`` in row-major order.

    ``positions`` is either a boolean mask ``(batch, seq)`` (any number of positions per row; its
    count is data-dependent, which costs a host sync on GPUs) or the columns ``(batch, k)`` int64
    of the training batches (:mod:`babyteach.data.masking`: the same k in every row, ascending, so
    the result has the static shape ``(batch · k, H)`` and the same row order as the boolean mask).
    """
    if positions.dtype == torch.bool and positions.shape == hidden.shape[:2]:
        return hidden[positions]  # (n_masked, H)
    if positions.dtype == torch.int64 and positions.dim() == 2 and positions.shape[0] == hidden.shape[0]:
        index = positions[..., None].expand(-1, -1, hidden.shape[-1])  # (batch, k, H)
        return hidden.gather(1, index).flatten(0, 1)  # (batch · k, H)
    raise ValueError(
        f"positions must be a boolean mask of shape {tuple(hidden.shape[:2])} or int64 columns of shape "
        f"({hidden.shape[0]}, k), got {positions.dtype} {tuple(positions.shape)}"
    )


def masked_logits(
    model: RobertaForMaskedLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor,
) -> torch.Tensor:
    """MLM logits at the masked positions only, shape ``(n_masked, vocab)``.

    ``positions`` is a boolean mask ``(batch, seq)`` or int64 columns ``(batch, k)`` (see
    :func:`_select`); the rows come in row-major order, i.e. they match ``labels[positions]``.
    The encoder runs on every token, but the vocabulary-sized LM head only on the selected rows,
    so the full ``(batch, seq, vocab)`` logits are never built.
    """
    hidden = model.roberta(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return model.lm_head(_select(hidden, positions))  # (n_masked, vocab)


def sd_section_ends(layers: int) -> list[int]:
    """Last layer (1-based) of each SD section: ``round(k·L/K)`` for k = 1..K, K = min(4, L).

    ``round`` is half-up (``floor(x + 1/2)``, in exact integer arithmetic), not Python's
    half-to-even: L = 6 gives [2, 3, 5, 6]; L = 12 gives [3, 6, 9, 12]; L = 2 gives [1, 2].
    """
    if layers < 1:
        raise InputError(f"self-distillation needs a student with at least one layer, got {layers}")
    k_max = min(SD_MAX_SECTIONS, layers)
    return [(2 * k * layers + k_max) // (2 * k_max) for k in range(1, k_max + 1)]


class _TiedExitHead(nn.Module):
    """An auxiliary MLM head: dense → GELU → LayerNorm → word-embedding projection + own bias.

    Mirrors ``RobertaLMHead``; the decoder weight is not a parameter of this module but
    the student's word-embedding matrix, passed in at call time, so it is shared, trained
    through every exit, and appears once in an optimizer over model + exits.
    """

    def __init__(self, hidden: int, vocab_size: int, layer_norm_eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.layer_norm = nn.LayerNorm(hidden, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, features: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(F.gelu(self.dense(features)))
        return F.linear(x, embedding_weight, self.bias)  # (n, vocab)


@dataclass
class SDOutput:
    """Per-section results of :class:`SDExits`, shallowest first; the last is the model's own head."""

    ends: list[int]  # last layer of each section (1-based)
    logits: list[torch.Tensor]  # each (n_masked, vocab)
    hidden: list[torch.Tensor]  # each (n_masked, H): hidden state after the section's last layer


class SDExits(nn.Module):
    """Self-distillation exits (Zhang et al. 2019) for a student of depth L.

    The encoder is cut into K = min(4, L) sections ending at :func:`sd_section_ends`.
    Each section end except the last gets an auxiliary MLM head (:class:`_TiedExitHead`);
    the last uses the model's own ``lm_head``. The exits are training-only: they are a
    separate module (optimise ``[*model.parameters(), *exits.parameters()]``) and are not
    saved with the model.
    """

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.ends = sd_section_ends(config.num_hidden_layers)
        self.heads = nn.ModuleList(
            _TiedExitHead(config.hidden_size, config.vocab_size, config.layer_norm_eps) for _ in self.ends[:-1]
        )
        std = config.initializer_range
        for head in self.heads:  # same scheme as the model's own head
            nn.init.normal_(head.dense.weight, std=std)
            nn.init.zeros_(head.dense.bias)

    def forward(
        self,
        model: RobertaForMaskedLM,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        positions: torch.Tensor,
    ) -> SDOutput:
        """Run ``model`` once; return every section's masked logits and hidden states.

        ``positions`` as in :func:`masked_logits` (a boolean mask or ``(batch, k)`` columns).
        """
        out = model.roberta(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        # out.hidden_states: L + 1 tensors (batch, seq, H): embeddings, then after each layer
        hidden = [_select(out.hidden_states[end], positions) for end in self.ends]
        embedding_weight = model.roberta.embeddings.word_embeddings.weight
        logits = [head(h, embedding_weight) for head, h in zip(self.heads, hidden[:-1], strict=True)]
        logits.append(model.lm_head(hidden[-1]))
        return SDOutput(ends=list(self.ends), logits=logits, hidden=hidden)

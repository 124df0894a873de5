"""Models: closed-form size, config, sparse MLM head, SD exits, FLOPs."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from babyteach.errors import InputError
from babyteach.models import (
    Architecture,
    SDExits,
    build_config,
    build_model,
    count_parameters,
    flops_per_token,
    masked_logits,
    sd_section_ends,
)

VOCAB, BLOCK = 50, 12


def _random_architectures(n: int, seed: int = 0) -> list[Architecture]:
    rng = random.Random(seed)
    archs = [Architecture(1, 1, 8), Architecture(1, 2, 16), Architecture(2, 1, 4)]
    while len(archs) < n:
        heads = rng.choice([1, 2, 3, 4])
        archs.append(Architecture(rng.randint(1, 3), heads, heads * rng.randint(1, 6)))
    return archs


def _param_total(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", _random_architectures(30), ids=Architecture.describe)
def test_count_parameters_equals_instantiated_tiny(arch):
    model = build_model(arch, VOCAB, BLOCK, seed=0)
    assert count_parameters(arch, VOCAB, BLOCK) == _param_total(model)


@pytest.mark.parametrize(
    "arch, vocab, block",
    [
        (Architecture(12, 12, 768), 16384, 128),  # RoBERTa-base teacher
        (Architecture(4, 8, 256), 8000, 512),
        (Architecture(2, 4, 320), 30522, 64),
    ],
    ids=["roberta-base", "mid", "wide-vocab"],
)
def test_count_parameters_equals_instantiated_mid_size(arch, vocab, block):
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = build_model(arch, vocab, block, seed=0)
    assert count_parameters(arch, vocab, block) == _param_total(model)


def test_count_parameters_hand_computed():
    # H=32, V=100, P=18, L=3: 32·121 + 3·(12·32² + 13·32) + 32² + 3·32 + 100
    assert count_parameters(Architecture(3, 4, 32), 100, 16) == 3872 + 3 * 12704 + 1220
    # heads do not change the count
    one_head, eight_heads = Architecture(3, 1, 32), Architecture(3, 8, 32)
    assert count_parameters(one_head, 100, 16) == count_parameters(eight_heads, 100, 16)


def test_config_fields():
    cfg = build_config(Architecture(2, 4, 64), vocab_size=300, block_size=126)
    assert cfg.max_position_embeddings == 128
    assert cfg.type_vocab_size == 1
    assert cfg.intermediate_size == 256
    assert cfg._attn_implementation == "sdpa"
    assert cfg.tie_word_embeddings
    model = build_model(Architecture(2, 4, 64), 300, 126, seed=0)
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight


def test_build_model_seeded_and_leaves_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(Architecture(1, 2, 8), VOCAB, BLOCK, seed=7)
    assert torch.rand(1) == expected
    b = build_model(Architecture(1, 2, 8), VOCAB, BLOCK, seed=7)
    c = build_model(Architecture(1, 2, 8), VOCAB, BLOCK, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    embeddings = [m.roberta.embeddings.word_embeddings.weight for m in (a, c)]
    assert not torch.equal(*embeddings)


@pytest.mark.parametrize(
    "fields, word",
    [((2, 3, 16), "divisible"), ((0, 1, 8), "layers"), ((1, 0, 8), "heads"), ((1, 2, -4), "hidden")],
)
def test_architecture_validation(fields, word):
    with pytest.raises(InputError, match=word):
        Architecture(*fields)


def test_architecture_from_mapping_names_key():
    arch = Architecture.from_mapping({"layers": 2, "heads": 2, "hidden": 8}, "search.teacher")
    assert arch == Architecture(2, 2, 8)
    with pytest.raises(InputError, match="search.teacher"):
        Architecture.from_mapping({"layers": 2, "heads": 3, "hidden": 8}, "search.teacher")
    with pytest.raises(InputError, match="search.teacher"):
        Architecture.from_mapping({"layers": 2, "hidden": 8}, "search.teacher")


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (3, BLOCK), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, -4:] = 0  # one padded row
    input_ids[1, -4:] = 1
    positions = torch.rand(3, BLOCK, generator=g) < 0.3
    positions[0, 0] = True
    positions &= attention_mask.bool()
    labels = torch.randint(3, VOCAB, (3, BLOCK), generator=g)
    return input_ids, attention_mask, positions, labels


def test_masked_logits_equal_full_logits_at_positions():
    model = build_model(Architecture(2, 2, 16), VOCAB, BLOCK, seed=0).eval()
    input_ids, attention_mask, positions, labels = _batch()
    with torch.no_grad():
        sparse = masked_logits(model, input_ids, attention_mask, positions)
        full = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (batch, seq, vocab)
    assert sparse.shape == (int(positions.sum()), VOCAB)
    torch.testing.assert_close(sparse, full[positions], atol=1e-5, rtol=0)

    # and the loss is the full-logits MLM loss with every other position ignored (-100)
    full_labels = torch.where(positions, labels, torch.full_like(labels, -100))
    with torch.no_grad():
        reference = model(input_ids=input_ids, attention_mask=attention_mask, labels=full_labels).loss
    torch.testing.assert_close(F.cross_entropy(sparse, labels[positions]), reference, atol=1e-5, rtol=0)


def test_masked_logits_take_per_row_columns_in_the_order_of_the_mask():
    # the training batches' (batch, k) columns select the same rows, in the same order, as a boolean mask
    model = build_model(Architecture(2, 2, 16), VOCAB, BLOCK, seed=0).eval()
    input_ids, _, _, _ = _batch()
    columns = torch.tensor([[5, 1, 9], [0, 2, 4], [11, 10, 3]]).sort(dim=1).values  # (batch, k), ascending per row
    mask = torch.zeros(input_ids.shape, dtype=torch.bool).scatter(1, columns, True)
    with torch.no_grad():
        torch.testing.assert_close(
            masked_logits(model, input_ids, None, columns), masked_logits(model, input_ids, None, mask), atol=0, rtol=0
        )


def test_masked_logits_reject_flat_indices():
    model = build_model(Architecture(1, 1, 8), VOCAB, BLOCK, seed=0)
    input_ids, attention_mask, _, _ = _batch()
    with pytest.raises(ValueError, match="boolean mask .* or int64 columns"):
        masked_logits(model, input_ids, attention_mask, torch.tensor([0, 5]))


@pytest.mark.parametrize(
    "layers, ends",
    [
        (1, [1]),
        (2, [1, 2]),
        (3, [1, 2, 3]),
        (4, [1, 2, 3, 4]),
        (5, [1, 3, 4, 5]),  # 1.25, 2.5, 3.75, 5: half-up
        (6, [2, 3, 5, 6]),  # 1.5, 3, 4.5, 6: half-up, not half-to-even
        (12, [3, 6, 9, 12]),
    ],
)
def test_sd_section_ends(layers, ends):
    assert sd_section_ends(layers) == ends


def test_sd_exits_outputs_and_gradients():
    arch = Architecture(6, 2, 16)
    model = build_model(arch, VOCAB, BLOCK, seed=0).eval()
    exits = SDExits(model.config)
    assert exits.ends == [2, 3, 5, 6] and len(exits.heads) == 3
    # the tied projection is the model's, not a second copy
    assert count_parameters(arch, VOCAB, BLOCK) == _param_total(model)
    assert _param_total(exits) == 3 * (16 * 16 + 16 + 2 * 16 + VOCAB)

    input_ids, attention_mask, positions, labels = _batch()
    out = exits(model, input_ids, attention_mask, positions)
    n = int(positions.sum())
    assert out.ends == [2, 3, 5, 6]
    assert [t.shape for t in out.logits] == [(n, VOCAB)] * 4
    assert [t.shape for t in out.hidden] == [(n, 16)] * 4
    # the deepest exit is the model's own masked logits
    torch.testing.assert_close(out.logits[-1], masked_logits(model, input_ids, attention_mask, positions))

    # an auxiliary head's loss alone trains the shared word embeddings and that head
    embedding = model.roberta.embeddings.word_embeddings.weight
    F.cross_entropy(out.logits[0], labels[positions]).backward()
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0
    assert exits.heads[0].bias.grad.abs().sum() > 0
    assert exits.heads[1].dense.weight.grad is None
    assert model.lm_head.dense.weight.grad is None
    # the embedding gradient includes the tied projection (rows of unseen tokens get some too)
    unseen = sorted(set(range(3, VOCAB)) - set(input_ids.flatten().tolist()))
    assert embedding.grad[unseen].abs().sum() > 0


def test_flops_per_token_formula():
    arch, v, t = Architecture(2, 2, 16), 50, 12
    matmul = 2 * 12 * 16 * 16 + 16 * 16 + 50 * 16
    assert flops_per_token(arch, v, t) == 6 * matmul + 12 * 2 * 12 * 16
    sparse = flops_per_token(arch, v, t, head_fraction=0.15)
    assert sparse == round(6 * (2 * 12 * 16 * 16 + 0.15 * (16 * 16 + 50 * 16)) + 12 * 2 * 12 * 16)
    # RoBERTa-base at 128 tokens: 6 × (85M encoder + 39M head) matmul weights + 14M attention
    base = flops_per_token(Architecture(12, 12, 768), 50265, 128)
    assert 7.5e8 < base < 7.7e8

"""Minimal-pair evaluation: loaders on the mirror files, batched PLL against a direct reference,
the official variant's text handling, mean and ties against hand-written references, aggregation
(ties wrong for the strict variants, correct for official), and the result JSON."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoTokenizer

from babyteach.acquire import fetch_dataset
from babyteach.data import registry as registry_module
from babyteach.data.registry import BLIMP_UIDS, SUPPLEMENT_TASKS
from babyteach.data.tokenizer import train_tokenizer
from babyteach.errors import InputError
from babyteach.evaluate.families import EWOK_DOMAINS
from babyteach.evaluate.pairs import aggregate, load_pairs
from babyteach.evaluate.scoring import (
    copy_lengths,
    load_model_and_tokenizer,
    plan_batches,
    precision,
    score_sentences,
    score_variants,
)
from babyteach.evaluate.zero_shot import RESULTS_VERSION, evaluate_pairs
from babyteach.models import Architecture, build_model

TRAIN_TEXT = [
    "the cat saw a dog in the garden.",
    "a dog saw the cat on the mat.",
    "who will the teacher help after lunch?",
    "the children played with a red ball.",
]

# Sentences of different lengths, with words the tiny vocabulary splits into several tokens.
SENTENCES = [
    "the cat saw a dog.",
    "Zebras quickly jumped over the unbelievable fence!",
    "a dog",
    "A: What did you break?\nB: I broke a bowl.",
]
PREFIXES = ["", "Ali is in the bakery.", "", "the cat saw"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random RoBERTa with a byte-level BPE tokenizer of ~300 tokens (many sub-words)."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "clean").mkdir()
    (root / "clean" / "tiny.train").write_text("\n".join(TRAIN_TEXT * 30) + "\n", encoding="utf-8")
    train_tokenizer(root / "clean", root / "model", vocab_size=300)
    tokenizer = AutoTokenizer.from_pretrained(root / "model")
    build_model(Architecture(2, 2, 32), len(tokenizer), block_size=128, seed=0).save_pretrained(root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def model_and_tokenizer(model_dir: Path):
    return load_model_and_tokenizer(model_dir, device="cpu")


def reference_pll(model, tokenizer, sentence: str, prefix: str, variant: str) -> float:
    """Unbatched PLL, minicons-style: one copy per scored token, full ``model(...)`` forward each.

    With a prefix, the scored tokens are those after the prefix's own tokens (``<s>`` + prefix),
    as minicons' ``conditional_score`` counts them.
    """
    text = f"{prefix} {sentence}" if prefix else sentence
    encoding = tokenizer(text)
    ids = encoding["input_ids"]
    words = encoding.word_ids()
    first = len(tokenizer(prefix)["input_ids"]) - 1 if prefix else 1  # drop the prefix's </s>
    scored = list(range(first, len(ids) - 1))  # never <s> or </s>
    total = 0.0
    for position in scored:
        masked = list(ids)
        masked[position] = tokenizer.mask_token_id
        if variant == "pll-word-l2r":
            for right in scored:
                if right > position and words[right] == words[position]:
                    masked[right] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([masked])).logits[0, position]
        total += torch.log_softmax(logits, dim=-1)[ids[position]].item()
    return total


def masked_logp(model, ids: list[int], position: int, mask_id: int) -> float:
    """``log p(ids[position])`` with that one token masked: one full ``model(...)`` forward."""
    masked = list(ids)
    masked[position] = mask_id
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([masked])).logits[0, position]
    return torch.log_softmax(logits.double(), dim=-1)[ids[position]].item()


def reference_official(model, tokenizer, sentence: str, prefix: str) -> float:
    """The BabyLM 2024 pipeline's score, written out as minicons 0.3.39 computes it, unbatched.

    hf-mlm: context = prefix, or ``eos_token`` when empty; continuation = " " + sentence (lm-eval's
    target delimiter). minicons ``conditional_score``: text = context + " " + continuation; scored
    from the count of the context's own tokens that are not ``</s>``/``<pad>``, every token not
    ``<s>``/``</s>``/``<pad>``; one token masked at a time; the mean.
    """
    context = prefix or tokenizer.eos_token
    ids = tokenizer(context + " " + " " + sentence)["input_ids"]
    start = sum(t not in (tokenizer.sep_token_id, tokenizer.pad_token_id) for t in tokenizer(context)["input_ids"])
    never = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    logps = [masked_logp(model, ids, i, tokenizer.mask_token_id) for i in range(start, len(ids)) if ids[i] not in never]
    return sum(logps) / len(logps)


@pytest.mark.parametrize("batch_tokens", [40, 65536])
@pytest.mark.parametrize("variant", ["pll", "pll-word-l2r", "official"])
def test_batched_pll_equals_unbatched_reference(model_and_tokenizer, variant, batch_tokens):
    model, tokenizer = model_and_tokenizer
    # 40 tokens: a sentence's copies are split over batches, and the longest inputs (> 40 tokens)
    # run one copy per batch; 65536: every copy of a length in one batch.
    assert max(len(tokenizer(f"{p} {s}" if p else s)["input_ids"]) for s, p in zip(SENTENCES, PREFIXES)) > 40
    got = score_sentences(model, tokenizer, SENTENCES, PREFIXES, variant=variant, batch_tokens=batch_tokens)
    if variant == "official":
        expected = [reference_official(model, tokenizer, s, p) for s, p in zip(SENTENCES, PREFIXES)]
    else:
        expected = [reference_pll(model, tokenizer, s, p, variant) for s, p in zip(SENTENCES, PREFIXES)]
    assert got == pytest.approx(expected, abs=1e-5)
    assert all(score < 0 for score in got)


def test_official_reads_eos_and_two_spaces_and_takes_the_mean(model_and_tokenizer):
    """The official text handling pinned by hand: which tokens the model reads, which it scores."""
    model, tokenizer = model_and_tokenizer
    ids = tokenizer.convert_tokens_to_ids
    # BLiMP: no context, so eos_token; "</s>" + " " (minicons' separator) + " the cat..." (lm-eval's
    # target delimiter): a lone "Ġ" is scored, then the sentence's tokens with their leading "Ġ".
    blimp = ids(["<s>", "</s>", "Ġ", "Ġthe", "Ġcat", "Ġsaw", "Ġa", "Ġdog", ".", "</s>"])
    expected = np.mean([masked_logp(model, blimp, i, tokenizer.mask_token_id) for i in range(2, 9)])
    assert score_sentences(model, tokenizer, ["the cat saw a dog."], variant="official") == pytest.approx(
        [expected], abs=1e-5
    )
    # EWoK: "the cat saw" + " " + " a dog": the context's tokens are read, not scored.
    ewok = ids(["<s>", "the", "Ġcat", "Ġsaw", "Ġ", "Ġa", "Ġdog", "</s>"])
    expected = np.mean([masked_logp(model, ewok, i, tokenizer.mask_token_id) for i in range(4, 7)])
    assert score_sentences(model, tokenizer, ["a dog"], ["the cat saw"], variant="official") == pytest.approx(
        [expected], abs=1e-5
    )
    # the same sentence scored strictly: its own tokens only, summed
    plain = ids(["<s>", "the", "Ġcat", "Ġsaw", "Ġa", "Ġdog", ".", "</s>"])
    expected = sum(masked_logp(model, plain, i, tokenizer.mask_token_id) for i in range(1, 7))
    assert score_sentences(model, tokenizer, ["the cat saw a dog."], variant="pll") == pytest.approx(
        [expected], abs=1e-5
    )


def test_copy_lengths_are_what_each_variant_runs(model_and_tokenizer):
    """The budget's count: "the cat saw a dog." is <s> + 6 tokens + </s> for the strict variants
    (6 copies of 8 tokens) and <s> </s> Ġ + 6 tokens + </s> for official (7 copies of 10)."""
    _, tokenizer = model_and_tokenizer
    sentence = ["the cat saw a dog."]
    assert copy_lengths(tokenizer, sentence, [""], ["pll-word-l2r"]).tolist() == [8] * 6
    assert copy_lengths(tokenizer, sentence, [""], ["official"]).tolist() == [10] * 7
    assert copy_lengths(tokenizer, sentence, [""]).tolist() == [10] * 7 + [8] * 6  # both, as every evaluation


def test_all_variants_from_one_pass_equal_each_variant_alone(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    together = score_variants(
        model, tokenizer, SENTENCES, PREFIXES, ("official", "pll-word-l2r", "pll"), batch_tokens=40
    )
    for variant, scores in together.items():
        alone = score_sentences(model, tokenizer, SENTENCES, PREFIXES, variant=variant, batch_tokens=40)
        assert scores == pytest.approx(alone, abs=1e-6), variant
    assert len({tuple(v) for v in together.values()}) == 3  # three different numbers per sentence
    with pytest.raises(InputError, match="unknown scoring variant 'mean'"):
        score_variants(model, tokenizer, SENTENCES, variants=("official", "mean"))
    with pytest.raises(InputError, match="distinct"):
        score_variants(model, tokenizer, SENTENCES, variants=("official", "official"))


def test_scoring_precision_is_full_fp32_whatever_the_caller_set():
    device = torch.device("cpu")
    torch.set_float32_matmul_precision("high")  # what training sets on CUDA (TF32)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            with precision(device):
                assert torch.get_float32_matmul_precision() == "highest"
                assert not torch.is_autocast_enabled("cpu")
                assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
            assert torch.is_autocast_enabled("cpu")
        assert torch.get_float32_matmul_precision() == "high"  # restored
    finally:
        torch.set_float32_matmul_precision("highest")


def test_plan_batches_buckets_by_length_within_the_token_budget():
    # copy lengths; budget 10: 12 > budget goes alone, the 5s two per batch, the 3s three per batch
    plan = plan_batches([3, 5, 3, 12, 5, 5, 3, 3], batch_tokens=10)
    assert plan.order.tolist() == [3, 1, 4, 5, 0, 2, 6, 7]  # longest first, stable within a length
    assert plan.bounds == [(0, 1, 12), (1, 3, 5), (3, 4, 5), (4, 7, 3), (7, 8, 3)]
    assert plan.tokens == 12 + 3 * 5 + 4 * 3
    assert plan_batches([], batch_tokens=10).bounds == []


def test_plan_batches_keeps_every_copy_once_and_never_exceeds_the_budget():
    rng = np.random.default_rng(0)
    lengths = np.r_[rng.integers(3, 40, size=5000), 300]  # BLiMP-like lengths and one very long input
    for budget in (64, 1000, 65536):
        plan = plan_batches(lengths, budget)
        batches = [plan.order[first:end] for first, end, _ in plan.bounds]
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(lengths.size))  # none lost or doubled
        for (first, end, length), copies in zip(plan.bounds, batches, strict=True):
            assert (lengths[copies] == length).all()  # one length per batch: no padding
            assert (end - first) * length <= budget or end - first == 1  # only a lone over-long copy exceeds it
        assert [length for *_, length in plan.bounds] == sorted((b[2] for b in plan.bounds), reverse=True)
    with pytest.raises(InputError, match="batch_tokens must be a positive integer"):
        plan_batches(lengths, 0)


def test_scores_come_back_in_input_order(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    forward = score_sentences(model, tokenizer, SENTENCES, PREFIXES, batch_tokens=40)
    backward = score_sentences(model, tokenizer, SENTENCES[::-1], PREFIXES[::-1], batch_tokens=40)
    assert backward[::-1] == pytest.approx(forward, abs=1e-6)
    assert len(set(forward)) == len(forward)  # distinct scores: a reordering would show
    assert score_sentences(model, tokenizer, []) == []


def test_a_sentence_longer_than_the_budget_is_scored_one_copy_per_batch(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    long = "Zebras quickly jumped over the unbelievable fence while the cat saw a dog in the garden."
    n = len(tokenizer(long)["input_ids"])
    assert n > 24
    got = score_sentences(model, tokenizer, ["a dog", long], batch_tokens=24)
    assert got[1] == pytest.approx(reference_pll(model, tokenizer, long, "", "pll-word-l2r"), abs=1e-5)
    assert got[0] == pytest.approx(reference_pll(model, tokenizer, "a dog", "", "pll-word-l2r"), abs=1e-5)


class _CountOps(TorchDispatchMode):
    """Counts the aten ops run under it."""

    def __init__(self):
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1  # e.g. 'aten.addmm'
        return func(*args, **(kwargs or {}))


def test_scoring_reads_nothing_back_per_batch(model_and_tokenizer):
    # Ops that copy a device value to the host (a GPU sync): an attention mask makes transformers
    # check it with torch.all(...) on every forward pass; reading a result per batch would add more.
    model, tokenizer = model_and_tokenizer
    with _CountOps() as ops:
        score_sentences(model, tokenizer, SENTENCES, PREFIXES, batch_tokens=40)
    assert ops.counts["aten.log_softmax"] >= 10  # many batches ran
    host_reads = ("aten._local_scalar_dense", "aten.is_nonzero", "aten.item", "aten.nonzero", "aten.all")
    assert {k: v for k, v in ops.counts.items() if k in host_reads} == {}


def test_a_tokenizer_saved_with_truncation_does_not_cut_sentences(model_dir: Path, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    truncating = AutoTokenizer.from_pretrained(model_dir)
    truncating.backend_tokenizer.enable_truncation(max_length=6)
    sentence = ["Zebras quickly jumped over the unbelievable fence!"]
    assert score_sentences(model, truncating, sentence) == pytest.approx(score_sentences(model, tokenizer, sentence))


def test_word_l2r_differs_from_plain_pll_on_multi_token_words(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    sentence = ["Zebras quickly jumped over the unbelievable fence!"]
    assert len(tokenizer.tokenize(" unbelievable")) > 1
    pll = score_sentences(model, tokenizer, sentence, variant="pll")[0]
    l2r = score_sentences(model, tokenizer, sentence, variant="pll-word-l2r")[0]
    assert abs(pll - l2r) > 1e-3


def test_prefix_tokens_are_not_scored(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    with_context = score_sentences(model, tokenizer, ["a dog"], ["the cat saw the cat saw"])[0]
    whole = score_sentences(model, tokenizer, ["the cat saw the cat saw a dog"])[0]
    assert with_context > whole  # fewer terms, each a log-probability < 0


def write_blimp_like(folder: Path, rows_by_uid: dict[str, list[str]]) -> Path:
    """A blimp-fast-style folder: one ``<UID>.jsonl`` per UID (the given raw lines, else one pair)."""
    folder.mkdir(parents=True)
    for k, uid in enumerate(BLIMP_UIDS):
        # Lexically identical pairs with the same first word: the same tokens, permuted.
        row = {
            "sentence_good": "the cat saw a dog.",
            "sentence_bad": "the dog saw a cat.",
            "linguistics_term": f"term_{k % 3}",
            "UID": uid,
            "pair_id": 0,
        }
        lines = rows_by_uid.get(uid, [json.dumps(row)])
        (folder / f"{uid}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_constant_model_ties_every_pair_wrong_when_strict_and_correct_when_official(model_dir: Path, tmp_path: Path):
    constant = tmp_path / "constant"
    shutil.copytree(model_dir, constant)
    model, tokenizer = load_model_and_tokenizer(constant, device="cpu")
    head = model.lm_head
    for parameter in (head.layer_norm.weight, head.layer_norm.bias, head.bias):
        torch.nn.init.zeros_(parameter)  # logits are 0 for every input
    model.save_pretrained(constant)
    data = write_blimp_like(tmp_path / "blimp-fast", {})
    result = evaluate_pairs(constant, "blimp-fast", data, tmp_path / "out.json", per_item=True)
    n = len(BLIMP_UIDS)
    strict, official = result["variants"]["pll-word-l2r"], result["variants"]["official"]
    for numbers in (strict, official):
        assert numbers["n_pairs"] == n and numbers["ties"] == n
    assert strict["accuracy"] == 0.0 and strict["macro_accuracy"] == 0.0 and strict["ties_count_as"] == "wrong"
    assert all(t["ties"] == 1 and t["accuracy"] == 0.0 for t in strict["tasks"].values())
    assert official["accuracy"] == 1.0 and official["macro_accuracy"] == 1.0 and official["ties_count_as"] == "correct"
    assert all(t["ties"] == 1 and t["accuracy"] == 1.0 for t in official["tasks"].values())
    log_v = -np.log(len(tokenizer))  # every token's log-probability under uniform logits
    for item in result["items"]:
        assert item["good"] == item["bad"]
        assert item["good"]["official"] == pytest.approx(log_v, abs=1e-5)  # the mean: one token's value
        assert item["good"]["pll-word-l2r"] == pytest.approx(6 * log_v, abs=1e-4)  # the sum over 6 tokens
    assert json.loads((tmp_path / "out.json").read_text()) == result


def test_aggregate_per_task_group_and_macro():
    records = [
        {"task": "a", "group": "g1", "good": -1.0, "bad": -2.0},  # correct
        {"task": "a", "group": "g1", "good": -3.0, "bad": -3.0},  # tie: wrong
        {"task": "a", "group": "g2", "good": -5.0, "bad": -4.0},  # wrong
        {"task": "b", "group": "g2", "good": -0.5, "bad": -9.0},  # correct
    ]
    result = aggregate(records)
    assert result["tasks"] == {
        "a": {"n": 3, "correct": 1, "ties": 1, "accuracy": pytest.approx(1 / 3)},
        "b": {"n": 1, "correct": 1, "ties": 0, "accuracy": 1.0},
    }
    assert result["groups"] == {
        "g1": {"n": 2, "correct": 1, "ties": 1, "accuracy": 0.5},
        "g2": {"n": 2, "correct": 1, "ties": 0, "accuracy": 0.5},
    }
    assert (result["n_pairs"], result["correct"], result["ties"]) == (4, 2, 1)
    assert result["accuracy"] == 0.5
    assert result["macro_accuracy"] == pytest.approx((1 / 3 + 1) / 2)
    # official: lm-eval's np.argmax([good, bad]) == 0, the tie is correct
    official = aggregate(records, "official")
    assert official["tasks"]["a"] == {"n": 3, "correct": 2, "ties": 1, "accuracy": pytest.approx(2 / 3)}
    assert (official["n_pairs"], official["correct"], official["ties"]) == (4, 3, 1)
    assert official["macro_accuracy"] == pytest.approx((2 / 3 + 1) / 2)


def test_blimp_fast_loader_on_mirror_files(data_mirror: Path, tmp_path: Path):
    fetch_dataset("blimp-fast", tmp_path / "blimp-fast", mirror=data_mirror)
    pairs = load_pairs("blimp-fast", tmp_path / "blimp-fast", max_per_task=3)
    assert len(pairs) == 3 * len(BLIMP_UIDS)
    assert [p.task for p in pairs[::3]] == list(BLIMP_UIDS)
    first = json.loads((tmp_path / "blimp-fast" / "adjunct_island.jsonl").read_text().split("\n")[0])
    assert (pairs[0].good, pairs[0].bad, pairs[0].group) == (
        first["sentence_good"],
        first["sentence_bad"],
        first["linguistics_term"],
    )
    assert pairs[0].prefix == "" and [p.line for p in pairs[:3]] == [1, 2, 3]


def test_original_blimp_zip_loader_skips_junk_members(data_mirror: Path, tmp_path: Path):
    fetch_dataset("blimp", tmp_path / "blimp", mirror=data_mirror)
    pairs = load_pairs("blimp", tmp_path / "blimp", max_per_task=2)
    assert len(pairs) == 2 * len(BLIMP_UIDS)
    assert {p.task for p in pairs} == set(BLIMP_UIDS)
    assert pairs[0].good == "Who should Derek hug after shocking Richard?"


def test_supplement_keeps_dialogue_newlines(data_mirror: Path, tmp_path: Path):
    fetch_dataset("supplement-fast", tmp_path / "supp", mirror=data_mirror)
    pairs = load_pairs("supplement-fast", tmp_path / "supp")
    assert len(pairs) == 250
    assert [p.task for p in pairs[::50]] == list(SUPPLEMENT_TASKS)
    qa = [p for p in pairs if p.task == "qa_congruence_easy"]
    assert qa[0].good == "A: What did you break?\nB: I broke a bowl."
    assert all("\n" in p.good and "\n" in p.bad for p in qa)
    assert all(p.group == p.task for p in pairs)


def test_ewok_read_in_memory_from_the_encrypted_zip(data_mirror: Path, tmp_path: Path, model_dir: Path):
    fetch_dataset("ewok-fast", tmp_path / "ewok", mirror=data_mirror)
    before = sorted(p for p in tmp_path.rglob("*"))
    pairs = load_pairs("ewok-fast", tmp_path / "ewok")
    assert len(pairs) == 1100
    assert [p.task for p in pairs[::100]] == list(EWOK_DOMAINS)
    assert all(p.prefix and p.group == p.task for p in pairs)
    result = evaluate_pairs(model_dir, "ewok-fast", tmp_path / "ewok", tmp_path / "out" / "e.json", max_per_task=1)
    for numbers in result["variants"].values():
        assert numbers["n_pairs"] == len(EWOK_DOMAINS) and set(numbers["groups"]) == set(EWOK_DOMAINS)
    after = sorted(p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts)
    assert after == before  # nothing extracted
    assert "Ali" not in (tmp_path / "out" / "e.json").read_text()  # no text in the results


def test_malformed_line_names_file_and_line_and_writes_nothing(model_dir: Path, tmp_path: Path):
    good = json.dumps({"sentence_good": "a b.", "sentence_bad": "b a.", "linguistics_term": "t"})
    data = write_blimp_like(tmp_path / "data", {"passive_1": [good, good, '{"sentence_good": "x",']})
    with pytest.raises(InputError, match=r"passive_1\.jsonl, line 3: not valid JSON"):
        load_pairs("blimp-fast", data)
    out = tmp_path / "out.json"
    with pytest.raises(InputError, match=r"passive_1\.jsonl, line 3"):
        evaluate_pairs(model_dir, "blimp-fast", data, out)
    assert not out.exists() and list(tmp_path.glob(".out.json*")) == []


def test_missing_field_names_file_line_and_field(tmp_path: Path):
    data = write_blimp_like(tmp_path / "data", {"wh_island": ['{"sentence_good": "a.", "sentence_bad": "b."}']})
    with pytest.raises(InputError, match=r"wh_island\.jsonl, line 1: field 'linguistics_term'"):
        load_pairs("blimp-fast", data)


def test_sentence_without_tokens_names_task_and_line(model_dir: Path, tmp_path: Path):
    empty = json.dumps({"sentence_good": "the cat.", "sentence_bad": "", "linguistics_term": "t"})
    data = write_blimp_like(tmp_path / "data", {"causative": ["", empty]})  # blank line 1 skipped
    out = tmp_path / "out.json"
    with pytest.raises(InputError, match=r"task causative line 2 \(bad\).*tokenizes to nothing"):
        evaluate_pairs(model_dir, "blimp-fast", data, out)
    assert not out.exists()


def test_model_folder_problems_are_input_errors(model_dir: Path, tmp_path: Path):
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, no_tokenizer / name)
    with pytest.raises(InputError, match="no tokenizer"):
        load_model_and_tokenizer(no_tokenizer)

    small = tmp_path / "small_vocab"
    shutil.copytree(model_dir, small)
    build_model(Architecture(1, 1, 8), vocab_size=100, block_size=16, seed=0).save_pretrained(small)
    with pytest.raises(InputError, match="tokenizer has 300 tokens but the model's vocabulary only 100"):
        load_model_and_tokenizer(small)


def test_result_json_fields(model_dir: Path, tmp_path: Path, caplog):
    # BLiMP has pairs whose two sentences are the same string: a tie for any model, counted wrong.
    same = json.dumps(
        {"sentence_good": "the cat saw a dog.", "sentence_bad": "the cat saw a dog.", "linguistics_term": "term_0"}
    )
    data = write_blimp_like(tmp_path / "data", {"passive_1": [same]})
    with caplog.at_level(logging.WARNING, logger="babyteach.evaluate.zero_shot"):
        # 512: the key's old default, when it counted masked copies; now tokens, with a warning
        result = evaluate_pairs(model_dir, "blimp-fast", data, tmp_path / "r.json", max_per_task=1, batch_tokens=512)
    assert "counts tokens, not masked copies" in caplog.text
    assert result["identical_pairs"] == 1
    assert result["version"] == RESULTS_VERSION == 2
    assert (result["family"], result["data_dir"], result["model_dir"]) == ("blimp-fast", "data", "model")
    assert list(result["variants"]) == ["official", "pll-word-l2r"]  # both, whatever the config
    strict, official = result["variants"]["pll-word-l2r"], result["variants"]["official"]
    assert strict["tasks"]["passive_1"] == {"n": 1, "correct": 0, "ties": 1, "accuracy": 0.0}
    assert official["tasks"]["passive_1"] == {"n": 1, "correct": 1, "ties": 1, "accuracy": 1.0}
    assert (strict["reduction"], official["reduction"]) == ("sum", "mean")
    for numbers in (strict, official):
        assert set(numbers["tasks"]) == set(BLIMP_UIDS) and set(numbers["groups"]) == {"term_0", "term_1", "term_2"}
    assert "items" not in result and "macro_accuracy" not in result  # numbers only per variant
    plain = evaluate_pairs(model_dir, "blimp-fast", data, tmp_path / "p.json", variants=["pll"], max_per_task=1)
    assert list(plain["variants"]) == ["pll"]
    with pytest.raises(InputError, match="unknown scoring variant"):
        evaluate_pairs(model_dir, "blimp-fast", data, tmp_path / "x.json", variants=["mean"])
    with pytest.raises(InputError, match="unknown benchmark family"):
        load_pairs("glue", data)


def test_sentence_longer_than_the_model_is_an_input_error(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    long = "zebras " * 40  # ~ 200 tokens with the tiny vocabulary; the model holds 128
    with pytest.raises(InputError, match=r"my pair: \d+ tokens .* more than the model's 128"):
        score_sentences(model, tokenizer, ["a dog.", long], names=["ok", "my pair"])


def test_cli_fetches_and_scores_supplement(model_dir: Path, tmp_path: Path, data_mirror: Path):
    from babyteach.cli import main

    assert main(["fetch", "supplement-fast", str(tmp_path / "supp"), "--mirror", str(data_mirror)]) == 0
    out = tmp_path / "supp.json"
    args = [
        "evaluate-pairs",
        str(model_dir),
        "supplement-fast",
        str(tmp_path / "supp"),
        str(out),
        "--max-per-task",
        "3",
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    for numbers in result["variants"].values():
        assert numbers["n_pairs"] == 15 and set(numbers["tasks"]) == {
            "hypernym",
            "qa_congruence_easy",
            "qa_congruence_tricky",
            "subject_aux_inversion",
            "turn_taking",
        }
    assert list(result["variants"]) == ["official", "pll-word-l2r"]
    assert main([*args, "--variants", "pll"]) == 0
    assert list(json.loads(out.read_text())["variants"]) == ["pll"]
    assert main([*args[:3], str(tmp_path / "missing"), str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


def test_wrong_ewok_password_is_an_input_error_and_writes_nothing(
    data_mirror: Path, tmp_path: Path, model_dir: Path, monkeypatch
):
    fetch_dataset("ewok-fast", tmp_path / "ewok-fast", mirror=data_mirror)
    monkeypatch.setattr(registry_module, "EWOK_ZIP_PASSWORD", "not-the-password")
    out = tmp_path / "ewok.json"
    with pytest.raises(InputError, match=r"ewok_fast\.zip: cannot decrypt .*re-fetch dataset 'ewok-fast'"):
        evaluate_pairs(model_dir, "ewok-fast", tmp_path / "ewok-fast", out, max_per_task=1)
    assert not out.exists()

"""Tokenizer: RoBERTa's special tokens and processing, loadable by AutoTokenizer, deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from babyteach.data.tokenizer import MIN_VOCAB_SIZE, SPECIAL_TOKENS, train_tokenizer
from babyteach.errors import InputError

TRAIN_TEXT = [
    "The cat sat on the mat.",
    "The dog sat on the log, didn't it?",
    "A cat and a dog played in the garden.",
    "Où est le café ? Très bien, merci !",
    "the the the cat cat dog",
]


def write_clean_dir(root: Path) -> Path:
    """A tiny clean folder: two domains, train and dev; 'zqxjv' occurs in dev only."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "alpha.train").write_text("\n".join(TRAIN_TEXT * 20) + "\n", encoding="utf-8")
    (root / "beta.train").write_text("\n".join(reversed(TRAIN_TEXT * 10)) + "\n", encoding="utf-8")
    (root / "alpha.dev").write_text("zqxjv zqxjv zqxjv\n" * 50, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tok")
    out = root / "tokenizer"
    train_tokenizer(write_clean_dir(root / "clean"), out, vocab_size=320)
    return out


def test_autotokenizer_loads_with_roberta_special_tokens(tokenizer_dir: Path):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tok.is_fast
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    ids = (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id)
    assert ids == (0, 1, 2, 3, 4)
    assert (tok.cls_token_id, tok.sep_token_id) == (0, 2)
    assert tok.model_max_length == 512
    assert len(tok) == 320


def test_encodes_single_and_pair_like_roberta(tokenizer_dir: Path):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tok("The cat sat.")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and not set(ids[1:-1]) & {0, 1, 2, 3, 4}
    assert tok.decode(ids[1:-1]) == "The cat sat."
    a = tok("a cat", add_special_tokens=False)["input_ids"]
    b = tok("the dog", add_special_tokens=False)["input_ids"]
    assert tok("a cat", "the dog")["input_ids"] == [0, *a, 2, 2, *b, 2]


def test_mask_token_absorbs_the_space_before_it(tokenizer_dir: Path):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    plain = tok("The cat", add_special_tokens=False)["input_ids"]
    assert tok("The cat <mask>", add_special_tokens=False)["input_ids"] == [*plain, 4]


def test_trained_on_train_split_only(tokenizer_dir: Path):
    vocab = AutoTokenizer.from_pretrained(tokenizer_dir).get_vocab()
    assert "Ġcat" in vocab  # frequent in train
    assert not any("zqx" in token for token in vocab)  # frequent in dev only


def test_training_is_deterministic(tmp_path: Path, tokenizer_dir: Path):
    out = tmp_path / "again"
    train_tokenizer(write_clean_dir(tmp_path / "clean"), out, vocab_size=320)
    assert (out / "tokenizer.json").read_bytes() == (tokenizer_dir / "tokenizer.json").read_bytes()


def test_smallest_vocabulary_is_accepted(tmp_path: Path):
    out = tmp_path / "tok"
    train_tokenizer(write_clean_dir(tmp_path / "clean"), out, vocab_size=MIN_VOCAB_SIZE)
    assert len(AutoTokenizer.from_pretrained(out)) == MIN_VOCAB_SIZE == 261


def test_too_small_vocabulary_names_the_key_and_minimum(tmp_path: Path):
    with pytest.raises(InputError, match=r"tokenizer\.vocab_size.*261"):
        train_tokenizer(write_clean_dir(tmp_path / "clean"), tmp_path / "tok", vocab_size=260)
    assert not (tmp_path / "tok").exists()


def test_no_train_files_names_the_folder(tmp_path: Path):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "alpha.dev").write_text("only dev\n", encoding="utf-8")
    with pytest.raises(InputError, match=str(clean)):
        train_tokenizer(clean, tmp_path / "tok", vocab_size=300)

"""Train the byte-level BPE tokenizer (RoBERTa's recipe) on the cleaned train split.

The result is a Hugging Face tokenizer folder (``tokenizer.json`` + ``tokenizer_config.json``)
that ``transformers.AutoTokenizer.from_pretrained(folder)`` loads as a fast RoBERTa tokenizer
and that models are saved with::

    from babyteach.data.tokenizer import train_tokenizer
    train_tokenizer(Path("results/2024-10M/clean"), Path("results/2024-10M/tokenizer"), vocab_size=50265)

Special tokens and their ids are RoBERTa's: ``<s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4``; a
sequence is encoded as ``<s> A </s>`` and a pair as ``<s> A </s></s> B </s>``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from babyteach.errors import InputError
from babyteach.io import atomic_path

log = logging.getLogger(__name__)

#: RoBERTa's special tokens, in id order (``<s>`` is 0, ..., ``<mask>`` is 4).
SPECIAL_TOKENS: tuple[str, ...] = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
BOS, PAD, EOS, UNK, MASK = SPECIAL_TOKENS

#: Size of the byte-level alphabet every vocabulary contains.
BYTE_ALPHABET_SIZE = 256

#: The smallest vocabulary that holds the special tokens and all 256 bytes.
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE

#: Longest sequence a model sees (RoBERTa: 512 tokens, 514 position embeddings).
MODEL_MAX_LENGTH = 512


def train_files(clean_dir: Path) -> list[Path]:
    """The ``<domain>.train`` files of a clean folder, sorted by name."""
    return sorted(p for p in Path(clean_dir).glob("*.train") if p.is_file())


def build_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE tokenizer with RoBERTa's pre- and post-processing."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(
        (EOS, SPECIAL_TOKENS.index(EOS)),  # sep
        (BOS, SPECIAL_TOKENS.index(BOS)),  # cls
        trim_offsets=True,
        add_prefix_space=False,
    )
    return tokenizer


def _special_tokens() -> list[AddedToken]:
    # <mask> swallows the space before it, as in RoBERTa ("a <mask>." -> "a", "<mask>", ".").
    return [AddedToken(token, special=True, lstrip=token == MASK, normalized=False) for token in SPECIAL_TOKENS]


def train_tokenizer(clean_dir: Path, out_dir: Path, vocab_size: int, min_frequency: int = 2) -> None:
    """Train byte-level BPE on ``clean_dir/*.train`` and save it as a tokenizer folder at ``out_dir``.

    ``vocab_size`` counts the 5 special tokens and the 256 byte tokens; ``min_frequency`` is
    the smallest count of a pair that may be merged. The same input gives the same
    ``tokenizer.json``. ``out_dir`` is written atomically (replaced as a whole).
    """
    clean_dir, out_dir = Path(clean_dir), Path(out_dir)
    if vocab_size < MIN_VOCAB_SIZE:
        raise InputError(
            f"tokenizer.vocab_size: {vocab_size} is too small; a byte-level BPE vocabulary needs at "
            f"least {MIN_VOCAB_SIZE} entries ({len(SPECIAL_TOKENS)} special tokens + "
            f"{BYTE_ALPHABET_SIZE} bytes). Set tokenizer.vocab_size to {MIN_VOCAB_SIZE} or more."
        )
    if min_frequency < 1:
        raise InputError(f"tokenizer.min_frequency: {min_frequency} must be at least 1")
    files = train_files(clean_dir)
    if not files:
        raise InputError(
            f"{clean_dir}: no '<domain>.train' files to train the tokenizer on; "
            "run the cleaning step first or point the rule at the clean folder"
        )
    log.info(
        "training byte-level BPE (vocab %d, min_frequency %d) on %s",
        vocab_size,
        min_frequency,
        ", ".join(p.name for p in files),
    )

    tokenizer = build_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=_special_tokens(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    try:
        tokenizer.train([str(p) for p in files], trainer)
    except Exception as err:  # tokenizers raises a bare Exception, e.g. for bytes that are not UTF-8
        raise InputError(
            f"{clean_dir}: cannot train the tokenizer on {', '.join(p.name for p in files)} ({err}); "
            "the files must be UTF-8 text: rerun the cleaning step"
        ) from err
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == expected_id, (token, tokenizer.token_to_id(token))
    if tokenizer.get_vocab_size() < vocab_size:
        log.warning(
            "vocabulary has %d entries, fewer than tokenizer.vocab_size=%d: the corpus has no more "
            "pairs occurring at least %d times",
            tokenizer.get_vocab_size(),
            vocab_size,
            min_frequency,
        )

    # Imported here: transformers is slow to import and only needed for saving.
    from transformers import RobertaTokenizerFast

    hf_tokenizer = RobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        sep_token=EOS,
        cls_token=BOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=MASK,
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,  # decoding must give back the text exactly
    )
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        hf_tokenizer.save_pretrained(tmp)
    log.info("saved tokenizer with %d entries to %s", tokenizer.get_vocab_size(), out_dir)


def load_tokenizer(tokenizer_dir: Path) -> Tokenizer:
    """The raw ``tokenizers.Tokenizer`` of a folder written by :func:`train_tokenizer`."""
    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise InputError(f"{path}: tokenizer file not found; run the train_tokenizer step first")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a truncated or garbled file
        raise InputError(
            f"{path}: not a readable tokenizer file ({err}); delete the tokenizer folder and rerun "
            "the train_tokenizer step"
        ) from err

"""Checks of a saved model folder shared by every evaluation (zero-shot scoring, fine-tuning).

Kept free of torch at import time, like :mod:`babyteach.evaluate.families`. The checked loader of any
saved part (:func:`babyteach.io.load_pretrained`) lives in :mod:`babyteach.io`, which training uses too.
"""

from __future__ import annotations

from pathlib import Path

from babyteach.errors import InputError
from babyteach.io import WEIGHT_FILES, load_pretrained


def load_checked_tokenizer(folder: Path, use: str):
    """The tokenizer saved with the model in ``folder``, after checking the folder for ``use``.

    A folder without a saved model (``config.json`` or a weights file missing) or without a
    tokenizer, damaged files, a tokenizer larger than the model's vocabulary (the model was
    trained with another one) or one without a ``<pad>`` token raises :class:`InputError`
    naming the folder. ``use`` completes the messages (e.g. "scoring", "fine-tuning").
    """
    from transformers import AutoConfig, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no saved model (config.json missing); train or copy the model there first")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise InputError(
            f"{folder}: no saved weights ({WEIGHT_FILES[0]} missing); the model was not saved completely: "
            "rerun its training step or copy the whole folder"
        )
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise InputError(
            f"{folder}: no tokenizer saved with the model (tokenizer.json missing); save the tokenizer "
            f"next to the weights (tokenizer.save_pretrained(folder)) so {use} uses the training vocabulary"
        )
    vocab_size = load_pretrained(AutoConfig, folder, "model config (config.json)").vocab_size
    tokenizer = load_pretrained(AutoTokenizer, folder, "tokenizer")
    if len(tokenizer) > vocab_size:
        raise InputError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only {vocab_size}; "
            "the model was trained with another tokenizer: save the training tokenizer with the model"
        )
    if tokenizer.pad_token_id is None:
        raise InputError(f"{folder}: the tokenizer defines no <pad> token; batches cannot be padded for {use}")
    return tokenizer

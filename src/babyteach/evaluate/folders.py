"""Checks of a saved model folder shared by every evaluation (zero-shot scoring, fine-tuning).

Kept free of torch at import time, like :mod:`babyteach.evaluate.families`.
"""

from __future__ import annotations

from pathlib import Path

from babyteach.errors import InputError

#: Weight files ``save_pretrained`` writes (one file, or an index of shards).
WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
)  # fmt: skip


def load_pretrained(loader, folder: Path, what: str = "weights", **kwargs):
    """``loader.from_pretrained(folder, **kwargs)``; a damaged file in ``folder`` is an :class:`InputError`.

    ``loader`` is a transformers class (``AutoConfig``, ``AutoTokenizer``, ``AutoModel…``);
    ``what`` names the part in the message. Truncated or garbled ``config.json``, tokenizer
    files or weights surface as many exception types (``OSError``, ``ValueError``, safetensors'
    ``SafetensorError``, a bare ``Exception`` from tokenizers), hence the broad catch; the
    original error is kept in the message and as the cause.
    """
    try:
        return loader.from_pretrained(folder, **kwargs)
    except Exception as err:
        raise InputError(
            f"{folder}: the saved {what} cannot be loaded ({type(err).__name__}: {err}); a file in the folder is "
            "truncated or damaged: save or copy the model there again (rerun its training step)"
        ) from err


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

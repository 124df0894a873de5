"""What a training run writes when it ends: one output folder, which appears complete or not at all.

Rank 0 writes it (:func:`write_outputs`) once every step and the final dev loss are done::

    out_dir/<student>/           save_pretrained model + tokenizer files + README.md model card
    out_dir/metrics.jsonl        one line per logged step: step, tokens, lr, tokens/s, loss and
                                 gradient norm (before clipping) per student; with
                                 ``cfg.eval_every``, also one line per evaluation:
                                 ``{"step", "tokens", "dev_loss": {student: nats}}``
    out_dir/peer_weights.csv     methods with an outer step (DWML, KD_DWML): ω after every outer
                                 step with its hypergradient, η, γ and outer loss (Figure 3)
    out_dir/gpu.csv              utilisation and memory of the visible GPUs every second (rank 0's
                                 sampler, :mod:`babyteach.gpu`; header only on CPU machines)
    out_dir/train_summary.json   steps, tokens, wall time, GPU summary, and per student the final dev
                                 loss, analytic training FLOPs (and ω); the config

The folder is built as a temporary sibling and renamed into place (:func:`babyteach.io.atomic_path`):
a failed write leaves no half-written folder, and the run's final checkpoint is kept, so the same
command writes the outputs again without training.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import RobertaForMaskedLM

from babyteach.io import atomic_path, write_json_atomic
from babyteach.models import Architecture

log = logging.getLogger(__name__)

PEER_WEIGHTS_FILE = "peer_weights.csv"
GPU_FILE = "gpu.csv"
#: Version of the ``train_summary.json`` and ``metrics.jsonl`` formats (3: ``dev_loss`` lines in metrics.jsonl).
SUMMARY_VERSION = 3


def model_card(name: str, arch: Architecture, summary: Mapping[str, Any]) -> str:
    """The README.md of student ``name``'s model folder: how it was trained, from the run's ``summary``."""
    student = summary["students"][name]
    options = ", ".join(f"{k}={v}" for k, v in summary["method_options"].items()) or "none"
    return "\n".join(
        [
            f"# {name}",
            "",
            "A RoBERTa-style masked language model trained by the babyteach workflow",
            '(reproducing "When Babies Teach Babies", BabyLM 2024).',
            "",
            "| | |",
            "|---|---|",
            f"| method | {summary['method']} (options: {options}) |",
            f"| architecture | {arch.describe()}: {arch.layers} layers, {arch.heads} heads, hidden {arch.hidden} |",
            f"| parameters | {student['parameters']:,} |",
            f"| block size | {summary['block_size']} tokens |",
            f"| tokens seen | {summary['tokens']:,} |",
            f"| optimiser steps | {summary['steps']:,} |",
            f"| training FLOPs (analytic) | {student['training_flops']:.3e} |",
            f"| wall time | {summary['wall_time_s']:.0f} s on {summary['device']} × {summary['processes']} |",
            f"| seed | {summary['config']['seed']} |",
            f"| config hash | `{summary['config_hash']}` (method, students and training settings; the checkpoint "
            f"folder `run-{summary['config_hash']}`) |",
            f"| final dev loss | {student['final_dev_loss']:.4f} nats (masked CE on "
            f"{summary['dev_blocks']} dev blocks spread over the dev split) |",
            *([f"| final peer weight ω | {student['peer_weight']:.4f} |"] if "peer_weight" in student else []),
            "",
            "Load it with `AutoModelForMaskedLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`.",
            "",
        ]
    )


def write_outputs(
    out_dir: Path,
    models: Mapping[str, RobertaForMaskedLM],
    students: Mapping[str, Architecture],
    tokenizer_dir: Path,
    metrics: list[dict[str, Any]],
    outer_log: list[dict[str, float]],
    gpu_csv: Path,
    summary: dict[str, Any],
) -> None:
    """Write the whole ``out_dir`` at once (atomic rename of a finished temporary folder); a full disk
    or unwritable folder raises a WriteError naming the file (the final checkpoint is kept, so the
    same command writes the outputs again without training)."""
    with atomic_path(
        out_dir, kept="the final checkpoint is kept: the same command writes the outputs from it without training again"
    ) as tmp:
        tmp.mkdir()
        for name, model in models.items():
            folder = tmp / name
            model.save_pretrained(folder)
            for path in sorted(Path(tokenizer_dir).iterdir()):
                if path.is_file():
                    shutil.copy2(path, folder / path.name)
            (folder / "README.md").write_text(model_card(name, students[name], summary), encoding="utf-8")
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in metrics)
        (tmp / "metrics.jsonl").write_text(lines, encoding="utf-8")
        if outer_log:
            pd.DataFrame(outer_log).to_csv(tmp / PEER_WEIGHTS_FILE, index=False)
        shutil.copy2(gpu_csv, tmp / GPU_FILE)
        write_json_atomic(tmp / "train_summary.json", summary)
    log.info("wrote %s", out_dir)

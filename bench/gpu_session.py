"""One prepared GPU session: throughput (issue 13), recipe curves and a budgeted teacher (issue 12).

A device machine gets the checkout and what ``carry`` names, nothing else; prepare the data on
the CPU side first (``python bench/prepare_device_data.py`` → ``device_data/``, 52 MB). Then, on
the device, one call per phase group, each well inside the 600 s a command may run::

    python bench/gpu_session.py --phases throughput recipe --budget-s 480 --out "$OUT"
    python bench/gpu_session.py --phases teacher --budget-s 420 --out "$OUT"
    python bench/gpu_session.py --quick --device cpu --data build/demo --out /tmp/session   # smoke run

Phases, each printing its figures as it goes and writing under ``--out``:

- ``throughput``: ``bench/gpu_check.py`` on the prepared data (every training job kind, the
  fast sets and the whole BLiMP scored, one MRPC fine-tuning epoch) → ``throughput.json``, the
  input of ``bench/gpu_budget.py``;
- ``recipe``: ``bench/gpu_recipe.py``'s :data:`GPU_SETTINGS` (docs/RECIPE.md, "Confirming on a
  GPU"), 4M tokens each → ``recipe/recipe_summary.csv``, ``recipe_curves.csv``, ``recipe_curves.png``;
- ``teacher``: RoBERTa-base with config.yaml's recipe for its full budget (10 epochs) or as many
  tokens as fit the time left (the throughput phase's measured tokens/s, or a first estimate),
  the schedule laid over the tokens it gets; then BLiMP-fast, supplement-fast and EWoK-fast →
  ``teacher/summary.json`` and the run's ``metrics.jsonl``.

``--budget-s`` is the wall time for all phases of the call; a phase that would not fit is cut
(recipe settings are skipped, the teacher gets fewer tokens) and says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_check  # noqa: E402
import gpu_recipe  # noqa: E402
from babyteach.data.shards import PackedBlocks  # noqa: E402
from babyteach.evaluate.zero_shot import evaluate_pairs  # noqa: E402
from babyteach.models import Architecture  # noqa: E402
from babyteach.train import TrainConfig, plan_steps, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHASES = ("throughput", "recipe", "teacher")
#: Seconds kept free after the teacher's training for scoring the three fast sets and writing.
SCORING_RESERVE_S = 60
#: The teacher's tokens/s before the throughput phase has measured one (issue 13's H200 figure, old loop).
FALLBACK_TOKENS_PER_S = 108_601


def say(text: str) -> None:
    print(text, flush=True)


def phase_throughput(data: Path, out: Path, device: str, quick: bool, budget_s: float) -> None:
    """``bench/gpu_check.py`` on the prepared data, its jobs cut to the budget."""
    args = ["--data", str(data), "--out", str(out), "--device", device, "--full-blimp", "--budget-s", str(budget_s)]
    gpu_check.main(args + (["--quick"] if quick else []))


def phase_recipe(data: Path, out: Path, device: str, quick: bool, budget_s: float) -> None:
    """The recipe settings of docs/RECIPE.md through ``train()``, 4M tokens each (quick: the smoke settings)."""
    specs = gpu_recipe.QUICK_SETTINGS if quick else gpu_recipe.GPU_SETTINGS
    arch = Architecture(2, 2, 64) if quick else gpu_recipe.TEACHER
    settings = [gpu_recipe.parse_setting(spec, arch) for spec in specs]
    gpu_recipe.run_recipes(
        settings,
        data / "shards",
        data / "tokenizer",
        out / "recipe",
        50_000 if quick else 4_000_000,
        budget_s=budget_s,
        device=device,
        say=say,
        title="recipe settings of docs/RECIPE.md",
    )


def teacher_rate(out: Path) -> float:
    """The teacher's measured tokens/s at the configured batch (the throughput phase), else the fallback."""
    path = out / "throughput.json"
    if path.is_file():
        for entry in json.loads(path.read_text())["training"]:
            if entry["method"] == "baseline" and "teacher" in entry["students"] and not entry["compile"]:
                return float(entry["tokens_per_s"])
    return FALLBACK_TOKENS_PER_S


def phase_teacher(data: Path, out: Path, device: str, quick: bool, budget_s: float) -> None:
    """The teacher with config.yaml's recipe: full budget if it fits, else the tokens that do; then scored."""
    started = time.monotonic()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    teacher = (
        Architecture(2, 2, 64) if quick else Architecture.from_mapping(config["model"]["teacher"], "model.teacher")
    )
    base = {**gpu_recipe.base_training(), "device": device, "checkpoint_every": 10**9}
    n_blocks = len(PackedBlocks(data / "shards", "train", base["block_size"]))
    full = plan_steps(TrainConfig(**{**base, "epochs": config["training"]["epochs"], "token_budget": None}), n_blocks)
    rate = teacher_rate(out) * (0.5 if quick else 1.0)
    fits = int(max(budget_s - SCORING_RESERVE_S - 60, 0) * rate)  # 60 s: model set-up, dev loss, writing
    tokens = min(full.tokens, fits) if not quick else min(full.tokens, 100_000)
    steps = max(1, tokens // full.tokens_per_step)
    cfg = TrainConfig(
        **{
            **base,
            "epochs": None,
            "token_budget": steps * full.tokens_per_step,
            "eval_every": max(1, steps // 10),
            "log_every": max(1, steps // 40),
        }
    )
    say(
        f"# teacher {teacher.describe()}, config.yaml's recipe (lr {cfg.lr}, warmup {cfg.warmup_fraction}, batch "
        f"{cfg.batch_size}): {steps} of the full budget's {full.steps} steps ({steps / full.steps:.0%}; "
        f"{steps * full.tokens_per_step:,} tokens) at ~{rate:,.0f} tokens/s"
    )
    target = out / "teacher"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="teacher-") as scratch:
        run = Path(scratch) / "run"
        with gpu_recipe._live("teacher", say):  # the dev-loss points as they come
            summary = train(
                "baseline", {"teacher": teacher}, data / "shards", data / "tokenizer", run, Path(scratch) / "ckpt", cfg
            )
        shutil.copy2(run / "metrics.jsonl", target / "metrics.jsonl")
        result = {
            "steps": steps,
            "full_budget_steps": full.steps,
            "tokens": summary["tokens"],
            "final_dev_loss": summary["students"]["teacher"]["final_dev_loss"],
            "wall_time_s": summary["wall_time_s"],
            "config": summary["config"],
            "scores": {},
        }
        for family in ("blimp-fast", "supplement-fast", "ewok-fast"):
            if (data / family).is_dir():
                scored = evaluate_pairs(
                    run / "teacher",
                    family,
                    data / family,
                    Path(scratch) / f"{family}.json",
                    max_per_task=20 if quick else None,
                )
                strict = scored["variants"]["pll-word-l2r"]
                result["scores"][family] = 100 * strict["macro_accuracy"]
                result["scores"][f"{family} (official)"] = 100 * scored["variants"]["official"]["macro_accuracy"]
                say(
                    f"teacher {family}: {result['scores'][family]:.1f} % pll-word-l2r, "
                    f"{result['scores'][f'{family} (official)']:.1f} % official ({strict['n_pairs']} pairs)"
                )
    (target / "summary.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    say(
        f"# teacher: final dev loss {result['final_dev_loss']:.4f} after {result['tokens']:,} tokens; "
        f"{time.monotonic() - started:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES), help="what to run, in order")
    parser.add_argument("--data", type=Path, default=REPO / "device_data", help="bench/prepare_device_data.py's folder")
    parser.add_argument("--out", type=Path, required=True, help="where the figures go ($OUT on the device)")
    parser.add_argument("--budget-s", type=float, default=480, help="wall seconds for all phases of this call")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, short runs")
    args = parser.parse_args(argv)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    say(
        f"# GPU session on {name}, torch {torch.__version__}; phases {' '.join(args.phases)}; budget {args.budget_s:.0f} s"
    )
    shares = {"throughput": 0.45, "recipe": 0.55, "teacher": 1.0}  # of the time left when the phase starts
    for number, phase in enumerate(args.phases):
        left = args.budget_s - (time.monotonic() - started)
        later = args.phases[number + 1 :]
        budget = left if not later else left * shares[phase]
        say(f"# phase {phase}: {budget:.0f} s of {left:.0f} s left")
        {"throughput": phase_throughput, "recipe": phase_recipe, "teacher": phase_teacher}[phase](
            args.data, args.out, args.device, args.quick, budget
        )
    say(f"# session done in {time.monotonic() - started:.0f} s; figures under {args.out}")


if __name__ == "__main__":
    main()

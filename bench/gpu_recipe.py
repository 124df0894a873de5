"""Recipe curves: train one architecture under several settings through ``train()``; dev loss vs tokens.

Each setting (a name, an architecture and :class:`~babyteach.train_config.TrainConfig` overrides
such as ``lr``, ``warmup_steps``, ``adam_beta2``, ``batch_size``) is trained one at a time with
``train("baseline", …)`` for the same token budget, with ``points`` dev-loss evaluations. Each
curve is printed as it comes, and after every run ``<out>/recipe_curves.csv`` (one row per dev
point), ``<out>/recipe_summary.csv`` (one row per setting) and ``<out>/recipe_curves.png`` (dev loss
against tokens with the unigram and own-token lines, :mod:`babyteach.data.unigram`) are rewritten,
so a run cut short keeps what it finished. A wall-clock budget is respected: a setting whose
estimated time (from the throughput measured so far, scaled by analytic FLOPs) does not fit is
skipped and reported, and a run that overruns is stopped at its next step. Trained weights are
not kept (only with ``eval_sets``, long enough to score them).

From a combined device script (the data from ``bench/prepare_device_data.py``)::

    from bench.gpu_recipe import Setting, run_recipes, parse_setting
    run_recipes([parse_setting("lr1e-4:lr=1e-4"), parse_setting("lr5e-4-w2k:lr=5e-4,warmup_steps=2000")],
                Path("device_data/shards"), Path("device_data/tokenizer"), Path(os.environ["OUT"]) / "recipe",
                token_budget=4_000_000, budget_s=420)

or the CLI (default settings: :data:`GPU_SETTINGS`, the runs that confirm docs/RECIPE.md)::

    python bench/gpu_recipe.py --data device_data --out "$OUT/recipe" --tokens 4000000 --budget-s 420
    python bench/gpu_recipe.py --data device_data --setting "lr1e-4:lr=1e-4" --setting "b1:lr=5e-4,adam_beta2=0.999"
    python bench/gpu_recipe.py --quick --device cpu --data build/demo --out /tmp/recipe   # smoke run

A setting's spec is ``name:key=value,…``; keys are TrainConfig fields, ``warmup_steps`` (turned
into ``warmup_fraction`` of the run) and ``arch`` (``L12-H12-D768``). Unset fields come from
``config.yaml``'s training section (the recipe under test).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from babyteach.data.unigram import own_token_floor, unigram_baseline  # noqa: E402
from babyteach.models import Architecture, flops_per_token  # noqa: E402
from babyteach.train import TrainConfig, plan_steps, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The teacher of config.yaml (RoBERTa-base).
TEACHER = Architecture(12, 12, 768)
#: What a GPU session runs to confirm docs/RECIPE.md, most important first (4M tokens each at batch 32:
#: ~40 s of training per setting on an H200 in bf16, twice that for fp32).
GPU_SETTINGS: tuple[str, ...] = (
    "new-default:lr=1e-4,warmup_fraction=0.25",  # config.yaml's recipe: must leave the unigram level
    "old-default:lr=5e-4,warmup_fraction=0.06",  # the stall (6.62), now with the diagnostics
    "old-default-fp32:lr=5e-4,warmup_fraction=0.06,precision=fp32",  # is bf16 part of the stall?
    "lr5e-4-w25pct:lr=5e-4,warmup_fraction=0.25",  # does the long warmup alone rescue lr 5e-4 (CPU: yes)?
    "lr1e-4-w6pct:lr=1e-4,warmup_fraction=0.06",  # the learning run (5.96): the warmup's effect at 1e-4
    "lr3e-4-w25pct:lr=3e-4,warmup_fraction=0.25",  # headroom towards the peers' better lr
    "peer-L6-H8-D640:arch=L6-H8-D640,lr=1e-4,warmup_fraction=0.25",  # the largest searched peer, new recipe
)
#: The smoke run of --quick: a tiny model on the demo slice.
QUICK_SETTINGS: tuple[str, ...] = ("lr2e-3:lr=2e-3", "lr5e-4:lr=5e-4")
#: TrainConfig fields a spec may not set: the run's length, cadence and device belong to run_recipes.
RESERVED = frozenset({"token_budget", "epochs", "eval_every", "log_every", "checkpoint_every", "device", "block_size"})
_ARCH = re.compile(r"L(\d+)-H(\d+)-D(\d+)")


@dataclass(frozen=True)
class Setting:
    """One recipe setting: a name, the architecture trained and TrainConfig overrides."""

    name: str
    arch: Architecture = TEACHER
    overrides: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields, plus warmup_steps

    def describe(self) -> str:
        """``L12-H12-D768 lr=0.0001 …`` for the logs."""
        return " ".join([self.arch.describe(), *(f"{k}={v}" for k, v in self.overrides.items())])


def parse_setting(spec: str, default_arch: Architecture = TEACHER) -> Setting:
    """A :class:`Setting` from ``name:key=value,…`` (numbers, null, true/false; ``arch=L4-H4-D256``)."""
    name, _, body = spec.partition(":")
    if not name or not re.fullmatch(r"[\w.+-]+", name):
        raise ValueError(f"setting {spec!r}: give it a name of letters, digits and ._+- before the ':'")
    arch, overrides = default_arch, {}
    known = {f.name for f in fields(TrainConfig)} | {"warmup_steps"}
    for item in filter(None, body.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(f"setting {spec!r}: {item!r} is not key=value")
        if key == "arch":
            match = _ARCH.fullmatch(value.strip())
            if not match:
                raise ValueError(f"setting {spec!r}: arch must look like L12-H12-D768, got {value!r}")
            arch = Architecture(*map(int, match.groups()))
        elif key in RESERVED or key not in known:
            raise ValueError(
                f"setting {spec!r}: {key!r} is not a settable training field ({', '.join(sorted(known - RESERVED))})"
            )
        else:
            overrides[key] = _scalar(value.strip())
    return Setting(name, arch, overrides)


def _scalar(text: str) -> Any:
    """``"5e-4"`` → 0.0005, ``"32"`` → 32, ``"null"`` → None, ``"true"`` → True (YAML reads 5e-4 as a str)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def base_training(config_path: Path = REPO / "config.yaml") -> dict[str, Any]:
    """config.yaml's training values as TrainConfig fields (length and cadence left to :func:`run_recipes`)."""
    config = yaml.safe_load(Path(config_path).read_text())
    values = {k: v for k, v in config["training"].items() if k not in RESERVED}
    values["block_size"] = config["model"]["block_size"]
    return values


def make_config(
    setting: Setting, base: Mapping[str, Any], token_budget: int, points: int, n_blocks: int, device: str
) -> TrainConfig:
    """The TrainConfig of one setting: ``base`` ⊕ its overrides, ``token_budget`` tokens, ``points`` dev
    evaluations, ``warmup_steps`` turned into the fraction of this run's steps."""
    values = {**base, **{k: v for k, v in setting.overrides.items() if k != "warmup_steps"}}
    values.update(token_budget=token_budget, epochs=None, device=device, checkpoint_every=10**9)
    probe = TrainConfig(**{**values, "eval_every": None})
    steps = plan_steps(probe, n_blocks).steps
    if "warmup_steps" in setting.overrides:
        values["warmup_fraction"] = min(int(setting.overrides["warmup_steps"]) / steps, 0.999)
    values["eval_every"] = max(1, steps // points)
    values["log_every"] = max(1, steps // (4 * points))
    return TrainConfig(**values)


class _LiveDevLoss(logging.Handler):
    """Forwards ``train()``'s "dev loss" log lines as they happen (the curve, live, before the run ends)."""

    def __init__(self, name: str, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.name_, self.say = name, say
        self.points: list[tuple[int, float]] = []  # (step, dev loss) as logged: a stopped run's partial curve

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "dev loss" in message:
            self.say(f"  {self.name_}: {message}")
            match = re.search(r"step (\d+)/\d+ dev loss \S+=([-\d.]+)", message)
            if match:
                self.points.append((int(match.group(1)), float(match.group(2))))


@contextlib.contextmanager
def _live(name: str, say: Callable[[str], None]):
    """Show ``babyteach.train``'s dev-loss lines while a run trains."""
    logger = logging.getLogger("babyteach.train")
    handler, level, propagate = _LiveDevLoss(name, say), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # its other INFO lines (every log_every step) stay out of the root handlers
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class _Deadline(Exception):
    """Raised from the step hook when a run passes the wall-clock budget."""


def _dev_curve(run_dir: Path) -> list[dict[str, Any]]:
    """The ``dev_loss`` lines of a run's metrics.jsonl as (step, tokens, dev_loss) rows (one student)."""
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "dev_loss" in record:
            (loss,) = record["dev_loss"].values()
            rows.append({"step": record["step"], "tokens": record["tokens"], "dev_loss": loss})
    return rows


def loss_by_corruption_of(model_dir: Path, shard_dir: Path, cfg: TrainConfig, device: str = "auto") -> dict[str, Any]:
    """A saved model's diagnostics (:mod:`babyteach.diagnostics`): dev loss at ``<mask>`` / random / kept
    positions (``context_gain``: what it takes from the context; ``ce_kept`` near the unigram: it does not
    copy its input) and the cosine between positions' hidden states per layer (near 1: collapsed)."""
    from transformers import AutoModelForMaskedLM

    from babyteach.diagnostics import hidden_similarity, loss_by_corruption

    where = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    model = AutoModelForMaskedLM.from_pretrained(model_dir, dtype=torch.float32).to(where)
    split = loss_by_corruption(model, shard_dir, cfg)
    similarity = hidden_similarity(model, shard_dir, cfg.block_size)
    return {
        "ce_mask": split.mask,
        "ce_random": split.random,
        "ce_kept": split.kept,
        "context_gain": split.context_gain,
        "cos_last": similarity[-1],
        "cos_layers": " ".join(f"{c:.2f}" for c in similarity),
    }


def plot_curves(curves: pd.DataFrame, unigram: float, floor: float, path: Path, title: str) -> None:
    """Dev loss against tokens, one line per setting, with the unigram and own-token floor lines (both on the
    dev blocks the loss is measured on)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, group in curves.groupby("setting", sort=False):
        ax.plot(group["tokens"] / 1e6, group["dev_loss"], marker="o", markersize=3, label=name)
    ax.axhline(unigram, color="black", linestyle="--", linewidth=1, label=f"unigram CE of the dev blocks {unigram:.2f}")
    ax.axhline(floor, color="grey", linestyle=":", linewidth=1.2, label=f"own-token floor {floor:.2f}")
    ax.set_xlabel("training tokens (M)")
    ax.set_ylabel("dev masked-LM loss (nats)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_recipes(
    settings: Sequence[Setting],
    shard_dir: Path,
    tokenizer_dir: Path,
    out_dir: Path,
    token_budget: int,
    *,
    points: int = 8,
    budget_s: float | None = None,
    device: str = "auto",
    base: Mapping[str, Any] | None = None,
    eval_sets: Mapping[str, Path] | None = None,
    eval_max_per_task: int | None = None,
    title: str = "",
    say: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Train every setting in turn for ``token_budget`` tokens; write curves, summary and figure; return the summary.

    ``base``: TrainConfig fields the settings override (default: config.yaml's training section).
    ``budget_s``: wall-clock seconds for all settings; a setting estimated not to fit is skipped
    (status ``skipped: …``) and one that overruns is stopped (``stopped at step …``; the dev points it
    reached are kept). ``eval_sets``: family → fetched folder (e.g. ``{"blimp-fast":
    Path("device_data/blimp-fast")}``), scored per setting with the BabyLM PLL scorer (its time counts in
    the estimates; ``eval_max_per_task``: only the first N pairs per task). Every finished run also gets
    the diagnostics of :func:`loss_by_corruption_of`. Outputs in ``out_dir``: ``recipe_curves.csv``,
    ``recipe_summary.csv``, ``recipe_curves.png`` and ``runs/<setting>.metrics.jsonl``.
    """
    from babyteach.data.shards import PackedBlocks
    from babyteach.evaluate.zero_shot import evaluate_pairs

    say = say or functools.partial(print, flush=True)  # flushed: the curves show while a device script runs
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = dict(base_training() if base is None else base)
    # the yardsticks on the blocks the dev loss is measured on (the first dev_blocks: one domain), not the whole split
    unigram = unigram_baseline(shard_dir, base["dev_blocks"], base["block_size"]).dev_cross_entropy
    floor = own_token_floor(shard_dir, dev_blocks=base["dev_blocks"], block_size=base["block_size"])
    unigram_all = unigram_baseline(shard_dir).dev_cross_entropy
    vocab = json.loads((Path(shard_dir) / "meta.json").read_text())["vocab_size"]
    n_blocks = len(PackedBlocks(shard_dir, "train", base["block_size"]))
    say(
        f"# recipe curves: {len(settings)} setting(s), {token_budget:,} tokens each, vocab {vocab}; "
        f"on the {base['dev_blocks']} dev-loss blocks (spread over the split) unigram CE {unigram:.3f}, own-token floor {floor:.3f} nats "
        f"(whole dev split: unigram {unigram_all:.3f}); budget "
        f"{'none' if budget_s is None else f'{budget_s:.0f} s'}"
    )
    s_per_flop: float | None = None  # measured wall seconds per analytic training FLOP (set-up included)
    curves: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for setting in settings:
        cfg = make_config(setting, base, token_budget, points, n_blocks, device)
        steps = plan_steps(cfg, n_blocks).steps
        flops = (
            flops_per_token(setting.arch, vocab, cfg.block_size, cfg.mask_prob)
            * steps
            * cfg.batch_size
            * cfg.grad_accum
            * cfg.block_size
        )
        row: dict[str, Any] = {
            "setting": setting.name,
            "arch": setting.arch.describe(),
            "lr": cfg.lr,
            "warmup_steps": round(cfg.warmup_fraction * steps),
            "batch_size": cfg.batch_size,
            "adam_beta2": cfg.adam_beta2,
            "adam_eps": cfg.adam_eps,
            "clip_norm": cfg.clip_norm,
            "dropout": cfg.dropout,
            "steps": steps,
            "tokens": steps * cfg.batch_size * cfg.grad_accum * cfg.block_size,
            "unigram_dev_ce": unigram,
            "own_token_floor": floor,
        }
        left = None if budget_s is None else budget_s - (time.monotonic() - started)
        estimate = None if s_per_flop is None else s_per_flop * flops
        if left is not None and (left <= 0 or (estimate is not None and estimate > left)):
            row["status"] = (
                f"skipped: needs ~{estimate:.0f} s, {max(left, 0):.0f} s left"
                if estimate is not None
                else "skipped: no time left"
            )
            say(f"## {setting.name}: {row['status']}")
            summary.append(row)
            _write(out_dir, curves, summary, unigram, floor, title)
            continue
        say(
            f"## {setting.name}: {setting.describe()}, {steps} steps, warmup {row['warmup_steps']}"
            + (f", estimated {estimate:.0f} s" if estimate is not None else "")
        )
        deadline = None if left is None else time.monotonic() + left
        train_losses: list[Any] = []

        def hook(
            step: int, models: Any, values: Any, deadline: float | None = deadline, losses: list[Any] = train_losses
        ) -> None:
            if isinstance(values, Mapping) and values:  # the loss as the loop holds it: reading it here would make
                losses[:] = [next(iter(values.values()))]  # every step wait for the GPU; read once, if stopped
            if deadline is not None and time.monotonic() > deadline:
                raise _Deadline(f"stopped at step {step} of {steps}: wall-clock budget spent")  # noqa: B023 (hook of this run)

        run_started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="recipe-") as scratch:
            run_dir = Path(scratch) / "out"
            try:
                with _live(setting.name, say) as live:
                    result = train(
                        "baseline",
                        {"teacher": setting.arch},
                        shard_dir,
                        tokenizer_dir,
                        run_dir,
                        Path(scratch) / "ckpt",
                        cfg,
                        on_step=hook,
                    )
            except _Deadline as stop:
                row["status"] = str(stop)
                row["last_train_loss"] = float(train_losses[-1]) if train_losses else math.nan
                row["wall_s"] = time.monotonic() - run_started
                curves += [
                    {"setting": setting.name, "step": step, "tokens": step * row["tokens"] // steps, "dev_loss": loss}
                    for step, loss in live.points
                ]  # the dev points it reached
                say(f"## {setting.name}: {row['status']} (last train loss {row['last_train_loss']:.3f})")
                summary.append(row)
                _write(out_dir, curves, summary, unigram, floor, title)
                continue
            wall = time.monotonic() - run_started
            points_of_run = _dev_curve(run_dir)
            curves += [{"setting": setting.name, **point} for point in points_of_run]
            final = result["students"]["teacher"]["final_dev_loss"]
            row.update(
                status="done",
                final_dev_loss=final,
                min_dev_loss=min(p["dev_loss"] for p in points_of_run),
                under_unigram=unigram - final,
                under_floor=floor - final,
                wall_s=wall,
                tokens_per_s=row["tokens"] / max(result["wall_time_s"], 1e-9),
            )
            row.update(loss_by_corruption_of(run_dir / "teacher", shard_dir, cfg, device))
            say(
                f"{setting.name}\tdev loss at <mask> {row['ce_mask']:.3f} (context gain over the unigram at the "
                f"same positions {row['context_gain']:+.3f}), random {row['ce_random']:.3f}, "
                f"kept {row['ce_kept']:.3f}; "
                f"cosine between positions per layer {row['cos_layers']}"
            )
            (out_dir / "runs").mkdir(exist_ok=True)
            shutil.copy2(run_dir / "metrics.jsonl", out_dir / "runs" / f"{setting.name}.metrics.jsonl")
            for family, folder in (eval_sets or {}).items():
                scored = evaluate_pairs(
                    run_dir / "teacher",
                    family,
                    Path(folder),
                    Path(scratch) / f"{family}.json",
                    max_per_task=eval_max_per_task,
                )
                row[family] = 100 * scored["variants"]["pll-word-l2r"]["macro_accuracy"]
                say(f"{setting.name}\t{family} {row[family]:.1f}")
        s_per_flop = (time.monotonic() - run_started) / flops  # training, diagnostics and scoring
        say(
            f"## {setting.name}: final dev loss {final:.4f} (unigram {final - unigram:+.3f}, own-token floor "
            f"{final - floor:+.3f}) in {wall:.0f} s"
        )
        summary.append(row)
        _write(out_dir, curves, summary, unigram, floor, title)
    say(f"# done in {time.monotonic() - started:.0f} s; {out_dir}")
    return pd.DataFrame(summary)


def _write(
    out_dir: Path, curves: list[dict[str, Any]], summary: list[dict[str, Any]], unigram: float, floor: float, title: str
) -> None:
    """Rewrite the CSVs and the figure with what is finished so far."""
    pd.DataFrame(summary).to_csv(out_dir / "recipe_summary.csv", index=False)
    frame = pd.DataFrame(curves, columns=["setting", "step", "tokens", "dev_loss"])
    frame.to_csv(out_dir / "recipe_curves.csv", index=False)
    if len(frame):
        plot_curves(frame, unigram, floor, out_dir / "recipe_curves.png", title)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO / "device_data",
        help="folder with shards/ and tokenizer/ (and fetched sets), from prepare_device_data.py",
    )
    parser.add_argument("--out", type=Path, default=Path("recipe_out"), help="output folder (default: %(default)s)")
    parser.add_argument("--setting", action="append", help="name:key=value,... (repeatable; default: GPU_SETTINGS)")
    parser.add_argument("--arch", default="L12-H12-D768", help="architecture of settings without arch=")
    parser.add_argument("--tokens", type=int, default=4_000_000, help="training tokens per setting")
    parser.add_argument("--points", type=int, default=8, help="dev-loss points per curve")
    parser.add_argument("--budget-s", type=float, default=None, help="wall-clock seconds for all settings")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="training.device")
    parser.add_argument("--score", nargs="*", default=[], help="fetched sets to score per setting, e.g. blimp-fast")
    parser.add_argument("--score-max", type=int, default=None, help="score only the first N pairs per task")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: L2-H2-D64, 40k tokens, demo-sized settings (use with the demo data)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    match = _ARCH.fullmatch(args.arch)
    if not match:
        parser.error(f"--arch must look like L12-H12-D768, got {args.arch!r}")
    arch = Architecture(*map(int, match.groups()))
    specs = args.setting or list(GPU_SETTINGS)
    base = base_training()
    if args.quick:
        arch, args.tokens, args.points = Architecture(2, 2, 64), 40_000, 4
        specs = args.setting or list(QUICK_SETTINGS)
        base.update(batch_size=8, dev_blocks=16)
        args.score_max = args.score_max or 20
    settings = [parse_setting(spec, arch) for spec in specs]
    device = args.device
    name = torch.cuda.get_device_name() if device != "cpu" and torch.cuda.is_available() else "CPU"
    title = f"{arch.describe()} on {args.data.name} ({name}, torch {torch.__version__})"
    run_recipes(
        settings,
        args.data / "shards",
        args.data / "tokenizer",
        args.out,
        args.tokens,
        points=args.points,
        budget_s=args.budget_s,
        device=device,
        base=base,
        eval_sets={family: args.data / family for family in args.score},
        eval_max_per_task=args.score_max,
        title=title,
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()

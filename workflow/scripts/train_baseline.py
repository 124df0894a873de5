"""Rule train_baseline: token shards → the baseline/teacher model (save_pretrained folder "teacher")."""

from pathlib import Path

from babyteach.logs import log_to
from babyteach.models import Architecture
from babyteach.train import TrainConfig, train

log_to(snakemake.log[0])  # noqa: F821 (injected by Snakemake)

train(
    "baseline",
    {"teacher": Architecture.from_mapping(dict(snakemake.params.teacher), "model.teacher")},  # noqa: F821
    shard_dir=Path(snakemake.input.shards),  # noqa: F821
    tokenizer_dir=Path(snakemake.input.tokenizer),  # noqa: F821
    out_dir=Path(snakemake.output[0]),  # noqa: F821
    ckpt_dir=Path(snakemake.params.checkpoint_dir),  # noqa: F821
    cfg=TrainConfig(
        **snakemake.params.training,  # noqa: F821
        block_size=snakemake.params.block_size,  # noqa: F821
        seed=int(snakemake.wildcards.seed),  # noqa: F821
    ),
)

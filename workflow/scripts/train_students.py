"""Rules train_students and train_mutual: token shards + searched peers (+ teacher for KD, KD_DWML) → one model folder per peer."""

from pathlib import Path

from babyteach.logs import log_to
from babyteach.search import students_from_search
from babyteach.train import TrainConfig, train

log_to(snakemake.log[0])  # noqa: F821 (injected by Snakemake)

teacher_run = snakemake.input.get("teacher")  # noqa: F821
train(
    snakemake.wildcards.method,  # noqa: F821
    students_from_search(snakemake.input.search, int(snakemake.wildcards.peers)),  # noqa: F821
    shard_dir=Path(snakemake.input.shards),  # noqa: F821
    tokenizer_dir=Path(snakemake.input.tokenizer),  # noqa: F821
    out_dir=Path(snakemake.output[0]),  # noqa: F821
    ckpt_dir=Path(snakemake.params.checkpoint_dir),  # noqa: F821
    cfg=TrainConfig(
        **snakemake.params.training,  # noqa: F821
        block_size=snakemake.params.block_size,  # noqa: F821
        seed=int(snakemake.wildcards.seed),  # noqa: F821
    ),
    teacher_dir=Path(teacher_run) / "teacher" if teacher_run else None,
    method_options=dict(snakemake.params.method_options),  # noqa: F821
)

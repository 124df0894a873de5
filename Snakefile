# babyteach: the paper "When Babies Teach Babies" (BabyLM 2024) from one target.
# This file is a table of contents; logic lives in src/babyteach, rules in workflow/rules.
import os

from snakemake.utils import min_version

min_version("8.20")


# Resolved beside this file so that `snakemake -d <workdir>` finds it too.
configfile: os.path.join(workflow.basedir, "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        data_outputs(),
        search_outputs(),
        train_outputs(),
        evaluation_outputs(),
        [ablation_outputs(ablation) for ablation in ABLATIONS],


rule data:
    """Every output of the data stage: fetched datasets, cleaned corpus, statistics, tokenizer, shards."""
    input:
        data_outputs(),


rule search:
    """Searched student architectures for every configured peer count (Table 3's input)."""
    input:
        search_outputs(),


rule train:
    """The baseline/teacher for every seed and every student method (KD, SD, DML, DWML, KD_DWML) at the largest peer count."""
    input:
        train_outputs(),


rule evaluate:
    """Zero-shot BLiMP / supplement / EWoK accuracy and (Super)GLUE fine-tuning of every model of `train`."""
    input:
        evaluation_outputs(),


rule ablation_peers:
    """DWML with each searched peer count (search.peer_counts), trained and evaluated."""
    input:
        ablation_outputs("peers"),


rule ablation_alpha:
    """DWML at the largest peer count for each ablations.alphas value, trained and evaluated."""
    input:
        ablation_outputs("alpha"),


rule ablation_weights:
    """Fixed (DML, ω = 1/M) against dynamic (DWML) peer weights, trained and evaluated."""
    input:
        ablation_outputs("weights"),


rule ablations:
    """Every ablation point, trained and evaluated."""
    input:
        [ablation_outputs(ablation) for ablation in ABLATIONS],

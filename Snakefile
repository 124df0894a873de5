# babyteach: the paper "When Babies Teach Babies" (BabyLM 2024) from one target.
# This file is a table of contents; logic lives in src/babyteach, rules in workflow/rules.
import os

from snakemake.utils import min_version

min_version("8.20")


report: "workflow/report/workflow.rst"


# Resolved beside this file so that `snakemake -d <workdir>` finds it too.
configfile: os.path.join(workflow.basedir, "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/probe.smk"


rule all:
    default_target: True
    input:
        data_outputs(),
        search_outputs(),
        train_outputs(),
        evaluation_outputs(),
        [ablation_outputs(ablation) for ablation in ABLATIONS],
        table_outputs(),
        figure_outputs(),


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


rule ablation_size:
    """The searched students trained alone (plain MLM) beside the DWML peers and the teacher: accuracy vs size."""
    input:
        ablation_outputs("size"),


rule ablations:
    """Every ablation point, trained and evaluated."""
    input:
        [ablation_outputs(ablation) for ablation in ABLATIONS],


rule tables:
    """Every table this configuration can build (results/tables/*.tex and *.csv)."""
    input:
        table_outputs(),


rule table1:
    """Main results: RoBERTa-base and DWML beside the published BabyLM baselines."""
    input:
        table_outputs(["table1"]),


rule table2:
    """Every method's peers on BLiMP, supplement and EWoK, with the RoBERTa-base row."""
    input:
        table_outputs(["table2"]),


rule table3:
    """Pretraining hyperparameters and the searched architectures of every peer count."""
    input:
        table_outputs(["table3"]),


rule table4:
    """(Super)GLUE fine-tuning hyperparameters."""
    input:
        table_outputs(["table4"]),


rule table5:
    """Corpus contents: lines and words per domain and split."""
    input:
        table_outputs(["table5"]),


rule table6:
    """BLiMP accuracy per phenomenon and method."""
    input:
        table_outputs(["table6"]),


rule table7:
    """BLiMP supplement accuracy per task and method."""
    input:
        table_outputs(["table7"]),


rule table8:
    """EWoK accuracy per domain and method."""
    input:
        table_outputs(["table8"]),


rule table9:
    """GPU utilisation, training FLOPs, wall time and tokens per model, relative to RoBERTa-base."""
    input:
        table_outputs(["table9"]),


rule figures:
    """Every figure (results/figures/*.pdf and *.png)."""
    input:
        figure_outputs(),


rule figure2:
    """Ablations of DWML: accuracy vs number of peers, vs alpha, and learned weight vs accuracy."""
    input:
        figure_outputs(["figure2"]),


rule figure3:
    """Peer-weight (omega) trajectories during DWML and KD_DWML."""
    input:
        figure_outputs(["figure3"]),


rule figure4:
    """GPU utilisation over time per method (an explicit no-GPU panel on CPU runs)."""
    input:
        figure_outputs(["figure4"]),


rule figure_size:
    """Accuracy against parameters: the teacher, the students trained alone and the DWML peers."""
    input:
        figure_outputs(["figure_size"]),


rule figure_training_loss:
    """Training and dev loss curves per method."""
    input:
        figure_outputs(["training_loss"]),


rule finished:
    """The tables and figures built so far, for an HTML report of a partial run: snakemake finished --report results/report.html."""
    input:
        finished_outputs,


rule probe:
    """The recipe probe (not part of all): the teacher at each probe.settings entry, results/probe/summary.csv and dev_loss.pdf."""
    input:
        probe_outputs(),

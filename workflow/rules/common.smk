# Helpers shared by all .smk files: config validation, paths, input functions.
import os
import re
import sys
from pathlib import Path

from snakemake.utils import validate

validate(config, workflow.source_path("../schemas/config.schema.yaml"))

# This file and the rule scripts import babyteach from this checkout, also in a --use-conda
# environment that only holds the dependencies: jobs inherit the environment of the
# Snakemake process. PYTHONPATH is set here, not required from the user (no `envvars:`).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

from babyteach.data.corpora import CorpusId  # noqa: E402
from babyteach.data.fetch import DATASETS, mirror_from  # noqa: E402
from babyteach.evaluate.families import FAMILIES  # noqa: E402
from babyteach.evaluate.glue import FinetuneConfig  # noqa: E402
from babyteach.train_config import TrainConfig  # noqa: E402

CORPUS = CorpusId(config["corpus"]["release"], config["corpus"]["track"])
DATA_MIRROR = mirror_from(config["data_mirror"])
# Cross-key checks the schema cannot express (e.g. exactly one of epochs and token_budget),
# at start-up rather than in the first training job.
TrainConfig(**config["training"], block_size=config["model"]["block_size"])
FinetuneConfig.from_mapping(config["finetune"])


wildcard_constraints:
    corpus=r"(2023|2024)-(10M|100M)",
    dataset="|".join(sorted(DATASETS)),
    peers=r"\d+",
    seed=r"\d+",
    run=r"baseline/seed-\d+|(kd|sd)/peers-\d+/seed-\d+|(dml|dwml|kd_dwml)/peers-\d+/alpha-[0-9.]+/seed-\d+",
    alpha=r"(0|1)(\.\d+)?",
    model=r"teacher|peer-\d+",
    family="|".join(sorted(FAMILIES)),


def data_mirror_param():
    """The resolved mirror folder as a string, for params (None: official URLs)."""
    return str(DATA_MIRROR) if DATA_MIRROR else None


def corpus_dataset(wildcards):
    """The fetched raw corpus folder of the {corpus} wildcard."""
    return f"results/raw/babylm-{wildcards.corpus}"


def corpus_release(wildcards):
    """The BabyLM release ("2023" or "2024") of the {corpus} wildcard."""
    return CorpusId.parse(wildcards.corpus).release


def data_outputs():
    """Every output of the data stage for the configured corpus and evaluation data."""
    return [
        *expand("results/raw/{dataset}", dataset=config["evaluation_data"]),
        f"results/{CORPUS.name}/stats/corpus.csv",
        f"results/{CORPUS.name}/tokenizer",
        f"results/{CORPUS.name}/shards",
    ]


def search_outputs():
    """The architecture-search result of every configured peer count."""
    return expand(
        "results/search/peers-{peers}.json", peers=config["search"]["peer_counts"]
    )


def checkpoint_dir(wildcards, output):
    """Resumable trainer state of a run: under checkpoints/, outside the declared outputs."""
    return str(Path("checkpoints") / Path(output[0]).relative_to("results"))


#: Methods that train all searched peers together (METHODS.md); their runs carry alpha.
MUTUAL_METHODS = ("dml", "dwml", "kd_dwml")


def method_options(wildcards):
    """The hyperparameters of the {method} wildcard, from its config section.

    Mutual methods read `mutual` with alpha from the {alpha} wildcard (DML only alpha and
    tau, so DWML-only keys never rerun it); KD_DWML adds the teacher term of `kd`.
    """
    if wildcards.method not in MUTUAL_METHODS:
        return config[wildcards.method]
    options = {**config["mutual"], "alpha": float(wildcards.alpha)}
    if wildcards.method == "dml":
        return {key: options[key] for key in ("alpha", "tau")}
    if wildcards.method == "kd_dwml":
        options.update(lam=config["kd"]["lam"], kd_tau=config["kd"]["tau"])
    return options


def student_training_inputs(wildcards):
    """Shards, tokenizer, searched architectures and, for KD and KD_DWML, the baseline teacher of the same seed."""
    inputs = {
        "shards": f"results/{wildcards.corpus}/shards",
        "tokenizer": f"results/{wildcards.corpus}/tokenizer",
        "search": f"results/search/peers-{wildcards.peers}.json",
    }
    if wildcards.method in ("kd", "kd_dwml"):
        inputs["teacher"] = (
            f"results/{wildcards.corpus}/train/baseline/seed-{wildcards.seed}"
        )
    return inputs


def student_run(method, peers, seed, alpha=None):
    """The folder under results/<corpus>/train of one student run."""
    if method in MUTUAL_METHODS:
        alpha = config["mutual"]["alpha"] if alpha is None else alpha
        return f"{method}/peers-{peers}/alpha-{alpha:g}/seed-{seed}"
    return f"{method}/peers-{peers}/seed-{seed}"


def models_of_runs(runs):
    """(run, model) of every saved model of the given runs, teacher or peer-1..p."""
    models = []
    for run in dict.fromkeys(runs):
        if run.startswith("baseline/"):
            models.append((run, "teacher"))
        else:
            peers = int(re.search(r"peers-(\d+)", run).group(1))
            models += [(run, f"peer-{i}") for i in range(1, peers + 1)]
    return models


def main_runs():
    """Baseline for every seed; every student method at the largest peer count and the main alpha."""
    peers = max(config["search"]["peer_counts"])
    runs = []
    for seed in config["seeds"]:
        runs.append(f"baseline/seed-{seed}")
        runs += [
            student_run(method, peers, seed) for method in ("kd", "sd", *MUTUAL_METHODS)
        ]
    return runs


def ablation_runs(ablation):
    """The runs of one ablation: peers (DWML per peer count), alpha (DWML per alpha) or weights (DML vs DWML)."""
    peers = max(config["search"]["peer_counts"])
    runs = []
    for seed in config["seeds"]:
        if ablation == "peers":
            runs += [
                student_run("dwml", p, seed) for p in config["search"]["peer_counts"]
            ]
        elif ablation == "alpha":
            runs += [
                student_run("dwml", peers, seed, alpha)
                for alpha in config["ablations"]["alphas"]
            ]
        elif ablation == "weights":
            runs += [student_run(method, peers, seed) for method in ("dml", "dwml")]
        else:
            raise ValueError(f"unknown ablation {ablation!r}")
    return runs


ABLATIONS = ("peers", "alpha", "weights")


def run_outputs(runs):
    """The training output folders of the given runs."""
    return [f"results/{CORPUS.name}/train/{run}" for run in dict.fromkeys(runs)]


def train_outputs():
    """Every model of the main comparison (Table 2): baseline and all student methods."""
    return run_outputs(main_runs())


def zero_shot_outputs(runs=None):
    """One zero-shot result per model of ``runs`` (default: the main runs) and minimal-pair dataset."""
    families = [name for name in config["evaluation_data"] if name in FAMILIES]
    return [
        f"results/{CORPUS.name}/eval/{run}/{model}/{family}.json"
        for run, model in models_of_runs(main_runs() if runs is None else runs)
        for family in families
    ]


def finetune_outputs(runs=None):
    """One (Super)GLUE result per model of ``runs`` (default: the main runs), if glue-filtered is evaluated."""
    if "glue-filtered" not in config["evaluation_data"]:
        return []
    return [
        f"results/{CORPUS.name}/eval/{run}/{model}/glue.json"
        for run, model in models_of_runs(main_runs() if runs is None else runs)
    ]


def evaluation_outputs(runs=None):
    """Every evaluation result (zero-shot and fine-tuning) of the models of ``runs`` (default: main)."""
    return zero_shot_outputs(runs) + finetune_outputs(runs)


def ablation_outputs(ablation):
    """The trained models of one ablation and their evaluation results."""
    runs = ablation_runs(ablation)
    return run_outputs(runs) + evaluation_outputs(runs)

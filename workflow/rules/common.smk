# Helpers shared by all .smk files: config validation, paths, input functions.
import os
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
from babyteach.train_config import TrainConfig  # noqa: E402

CORPUS = CorpusId(config["corpus"]["release"], config["corpus"]["track"])
DATA_MIRROR = mirror_from(config["data_mirror"])
# Cross-key checks the schema cannot express (e.g. exactly one of epochs and token_budget),
# at start-up rather than in the first training job.
TrainConfig(**config["training"], block_size=config["model"]["block_size"])


wildcard_constraints:
    corpus=r"(2023|2024)-(10M|100M)",
    dataset="|".join(sorted(DATASETS)),
    peers=r"\d+",
    seed=r"\d+",
    run=r"baseline/seed-\d+|(kd|sd)/peers-\d+/seed-\d+",
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


def method_options(wildcards):
    """The hyperparameters of the {method} wildcard (config section of the same name)."""
    return config[wildcards.method]


def student_training_inputs(wildcards):
    """Shards, tokenizer, searched architectures and, for KD, the baseline teacher of the same seed."""
    inputs = {
        "shards": f"results/{wildcards.corpus}/shards",
        "tokenizer": f"results/{wildcards.corpus}/tokenizer",
        "search": f"results/search/peers-{wildcards.peers}.json",
    }
    if wildcards.method == "kd":
        inputs["teacher"] = (
            f"results/{wildcards.corpus}/train/baseline/seed-{wildcards.seed}"
        )
    return inputs


def trained_models():
    """(run, model) of every model `train` produces: run is the folder under results/<corpus>/train."""
    peers = max(config["search"]["peer_counts"])
    models = []
    for seed in config["seeds"]:
        models.append((f"baseline/seed-{seed}", "teacher"))
        for method in ("kd", "sd"):
            run = f"{method}/peers-{peers}/seed-{seed}"
            models += [(run, f"peer-{i}") for i in range(1, peers + 1)]
    return models


def train_outputs():
    """Baseline for every seed; KD and SD students for the largest peer count and every seed."""
    runs = dict.fromkeys(run for run, _ in trained_models())
    return [f"results/{CORPUS.name}/train/{run}" for run in runs]


def zero_shot_outputs():
    """One zero-shot result per trained model and configured minimal-pair dataset."""
    families = [name for name in config["evaluation_data"] if name in FAMILIES]
    return [
        f"results/{CORPUS.name}/eval/{run}/{model}/{family}.json"
        for run, model in trained_models()
        for family in families
    ]

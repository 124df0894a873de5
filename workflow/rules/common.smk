# Helpers shared by all .smk files: config validation, paths, input functions.
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

# This file and the rule scripts import babyteach from this checkout, also in a --use-conda
# environment that only holds the dependencies: jobs inherit the environment of the
# Snakemake process. PYTHONPATH is set here, not required from the user (no `envvars:`).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

from babyteach.config_schema import check_config  # noqa: E402

# Numbers in any YAML spelling (1e-3) become numbers, and a bad key or value stops with one line
# per problem; then Snakemake's validate fills in the schema's defaults.
SCHEMA = str(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
check_config(config, SCHEMA)
validate(config, SCHEMA)

from babyteach.data.corpora import TRACK_WORDS, TRACKS, CorpusId  # noqa: E402
from babyteach.data.registry import DATASETS, mirror_from  # noqa: E402
from babyteach.errors import InputError  # noqa: E402
from babyteach.evaluate.families import FAMILIES  # noqa: E402
from babyteach.evaluate.glue import FinetuneConfig  # noqa: E402
from babyteach import layout  # noqa: E402
from babyteach.layout import checkpoint_dir as run_checkpoint_dir  # noqa: E402
from babyteach.layout import results_root  # noqa: E402
from babyteach.probe import probe_runs  # noqa: E402
from babyteach.report.finished import Item, finished, missing_note  # noqa: E402
from babyteach.report.inputs import ABLATIONS, FIGURES, Plan  # noqa: E402
from babyteach.startup import check_fetchable  # noqa: E402
from babyteach.train_config import CADENCE_KEYS, TrainConfig  # noqa: E402

# Every output, log, benchmark and checkpoint of this configuration lies under its results root.
RESULTS = results_root(config["results_dir"])
CORPUS = CorpusId(config["corpus"]["release"], config["corpus"]["track"])
DATA_MIRROR = mirror_from(config["data_mirror"])
# Cross-key checks the schema cannot express (e.g. exactly one of epochs and token_budget),
# at start-up rather than in the first training job.
TrainConfig(**config["training"], block_size=config["model"]["block_size"])
FinetuneConfig.from_mapping(config["finetune"])
# The recipe probe's runs, run name → training values (probe.settings validated here too).
PROBE_RUNS = probe_runs(
    config["probe"]["settings"],
    config["training"],
    config["probe"]["token_budget"],
    config["model"]["block_size"],
)


wildcard_constraints:
    corpus=r"(2023|2024)-(10M|100M)",
    dataset="|".join(sorted(DATASETS)),
    peers=layout.FIELD_PATTERNS["peers"],
    seed=layout.FIELD_PATTERNS["seed"],
    run=layout.run_pattern(),
    alpha=layout.FIELD_PATTERNS["alpha"],
    model=layout.MODEL_PATTERN,
    family="|".join(sorted(FAMILIES)),
    setting="|".join(re.escape(name) for name in PROBE_RUNS),


def results(path):
    """``path`` under this configuration's results root (config key results_dir)."""
    return f"{RESULTS}/{path}"


def logs(path):
    """The log file ``path`` of a job, under the results root's logs/."""
    return results(f"logs/{path}")


def benchmarks(path):
    """The benchmark (timing) file ``path`` of a job, under the results root's benchmarks/."""
    return results(f"benchmarks/{path}")


def data_mirror_param():
    """The resolved mirror folder as a string, for params (None: official URLs)."""
    return str(DATA_MIRROR) if DATA_MIRROR else None


def fetchable(wildcards):
    """Input function of fetch_data (it has no inputs): the start-up check of its dataset. Snakemake
    calls it while building the DAG, before any job runs, for exactly the datasets the requested
    targets need; an unavailable one stops the workflow naming the config key that asks for it.
    """
    dataset = wildcards.dataset
    check_fetchable(dataset, config, DATA_MIRROR, Path(results(f"raw/{dataset}")))
    return []


def fetch_decode_mode(wildcards):
    """corpus.on_decode_error for a corpus dataset (its files are decoded when fetched), else None;
    so a change of it refetches only the corpora."""
    if wildcards.dataset.startswith("babylm-"):
        return config["corpus"]["on_decode_error"]
    return None


def corpus_dataset(wildcards):
    """The fetched raw corpus folder of the {corpus} wildcard."""
    return results(f"raw/babylm-{wildcards.corpus}")


def scaled_runtime(minutes):
    """The runtime resource of a job whose work grows with the corpus (cleaning, tokenising,
    training): ``minutes`` on the smallest track, scaled by the {corpus} wildcard's words.
    """

    def runtime(wildcards):
        return (
            minutes * CorpusId.parse(wildcards.corpus).words // TRACK_WORDS[TRACKS[0]]
        )

    return runtime


def corpus_release(wildcards):
    """The BabyLM release ("2023" or "2024") of the {corpus} wildcard."""
    return CorpusId.parse(wildcards.corpus).release


def data_outputs():
    """Every output of the data stage for the configured corpus and evaluation data."""
    return [
        *expand(results("raw/{dataset}"), dataset=config["evaluation_data"]),
        results(f"{CORPUS.name}/stats/corpus.csv"),
        results(f"{CORPUS.name}/tokenizer"),
        results(f"{CORPUS.name}/shards"),
    ]


def checkpoint_dir(wildcards, output):
    """Resumable trainer state of a run: under the results root's checkpoints/, outside the declared outputs."""
    return run_checkpoint_dir(RESULTS, output[0])


def method_options(wildcards):
    """The hyperparameters of the {method} wildcard, from its config sections (babyteach.layout):
    only the keys it reads, so that another key's change never reruns it; a mutual method's alpha
    comes from the {alpha} wildcard."""
    return layout.method_options(wildcards.method, config, wildcards.get("alpha"))


def student_training_inputs(wildcards):
    """Shards, tokenizer, searched architectures and, for a method that distils from the teacher
    (KD, KD_DWML), the teacher run of the same seed."""
    inputs = {
        "shards": results(f"{wildcards.corpus}/shards"),
        "tokenizer": results(f"{wildcards.corpus}/tokenizer"),
        "search": results(f"search/peers-{wildcards.peers}.json"),
    }
    if layout.traits(wildcards.method).needs_teacher:
        teacher = layout.teacher_run(int(wildcards.seed)).name
        inputs["teacher"] = results(f"{wildcards.corpus}/train/{teacher}")
    return inputs


#: The run folder of each run shape, as the training rules' wildcard pattern (babyteach.layout).
TRAIN_RUN = {
    shape: f"{{corpus}}/train/{layout.run_template(shape)}"
    for shape in layout.RUN_TEMPLATES
}


def python_executable():
    """The interpreter of shell rules: the job environment's ``python`` under a deployment method
    (conda, apptainer, env modules), else the one running Snakemake (as ``script:`` chooses).
    """
    if workflow.deployment_settings.deployment_method:
        return "python"
    return shlex.quote(sys.executable)


def training_launcher(wildcards, resources):
    """The command that starts a training job: python, or torchrun (``python -m
    torch.distributed.run``) with one process per GPU when the job has ``resources.gpu`` > 1.
    """
    gpus = int(resources.get("gpu", 1))
    if gpus > 1:
        return f"{python_executable()} -m torch.distributed.run --standalone --nproc_per_node {gpus}"
    return python_executable()


def train_settings(wildcards):
    """What the config decides about one training job's models (src/babyteach/train_job.py), as
    JSON: a tracked param, so that a change of these values reruns the job."""
    # train_baseline has no {method}: it trains the teacher
    method = wildcards.get("method", layout.teacher_method())
    training = {k: v for k, v in config["training"].items() if k not in CADENCE_KEYS}
    settings = {
        "method": method,
        "seed": int(wildcards.seed),
        "block_size": config["model"]["block_size"],
        "training": training,
    }
    if "peers" in wildcards.keys():
        settings.update(
            peers=int(wildcards.peers), method_options=method_options(wildcards)
        )
    else:
        settings["teacher"] = config["model"]["teacher"]
    return json.dumps(settings, sort_keys=True)


def train_job(wildcards, input, output):
    """Where one training job reads and writes, and its checkpoint/log cadence, as JSON: derived
    from input and output, so no rerun trigger (a cadence change applies to runs trained after it).
    """
    job = {
        "shards": input.shards,
        "tokenizer": input.tokenizer,
        "output": output[0],
        "checkpoint_dir": checkpoint_dir(wildcards, output),
        "cadence": {key: config["training"][key] for key in CADENCE_KEYS},
    }
    # the students' architectures; the baseline run that KD and KD_DWML distil from
    for name, key in (("search", "search"), ("teacher", "teacher_run")):
        if name in input.keys():
            job[key] = getattr(input, name)
    return json.dumps(job, sort_keys=True)


# --- what the targets, tables and figures read: babyteach.report.inputs ---------------

PLAN = Plan(config)
search_outputs = PLAN.search_outputs
train_outputs = PLAN.train_outputs
evaluation_outputs = PLAN.evaluation_outputs
ablation_outputs = PLAN.ablation_outputs
table_outputs = PLAN.table_outputs
figure_outputs = PLAN.figure_outputs


def table_input_files(wildcards):
    """Input function of the table rule: the named inputs of {table}."""
    return PLAN.table_inputs(wildcards.table)


def table_params(wildcards):
    """Params function of the table rule: the options of {table}."""
    return PLAN.table_options(wildcards.table)


def figure_input_files(wildcards):
    """Input function of the figure rule: the named inputs of {figure}."""
    return PLAN.figure_inputs(wildcards.figure)


def figure_params(wildcards):
    """Params function of the figure rule: the benchmark of Figure 2 and of the size figure."""
    return PLAN.figure_options(wildcards.figure)


def finished_outputs(wildcards):
    """Input function of the target finished, the tables and figures built so far (and the probe's, if
    built); prints which are missing and the command that builds them (stderr)."""
    probe = Item("probe", tuple(probe_outputs()))
    done = finished([*PLAN.report_items(), probe])
    # the probe is not part of all: not missing when not built
    missing = [item for item in done.missing if item != probe]
    print(
        missing_note(missing, [str(f) for f in workflow.config_settings.configfiles]),
        file=sys.stderr,
    )
    if not done.files:
        raise InputError(
            "target finished: no table or figure is built yet, so a report would be empty; "
            "build one first, e.g. `snakemake table5 --cores all` (with the same --configfile)"
        )
    return done.files


# --- the recipe probe (target probe) -------------------------------------------------


def probe_train_settings(wildcards):
    """The tracked settings param of one probe run (as train_settings): the teacher architecture
    trained with plain MLM on the {setting} wildcard's training values."""
    settings = {
        "method": layout.teacher_method(),
        "seed": config["probe"]["seed"],
        "block_size": config["model"]["block_size"],
        "training": PROBE_RUNS[wildcards.setting],
        "teacher": config["model"]["teacher"],
    }
    return json.dumps(settings, sort_keys=True)


def probe_train_job(wildcards, input, output):
    """The job param of one probe run: train_job's, with dev-loss points every probe.eval_every steps."""
    job = json.loads(train_job(wildcards, input, output))
    job["cadence"]["eval_every"] = config["probe"]["eval_every"]
    return json.dumps(job, sort_keys=True)


def probe_run_outputs():
    """The run folder of every probe setting, in the configured order."""
    return [results(f"probe/{CORPUS.name}/train/{name}") for name in PROBE_RUNS]


def probe_eval_outputs():
    """The zero-shot result of every probe run on probe.dataset, in the configured order."""
    dataset = config["probe"]["dataset"]
    return [
        results(
            f"probe/{CORPUS.name}/eval/{name}/{layout.TEACHER_MODEL}/{dataset}.json"
        )
        for name in PROBE_RUNS
    ]


def probe_overrides():
    """Run name → its setting (the training keys it overrides: the summary's columns), in order."""
    return dict(zip(PROBE_RUNS, config["probe"]["settings"], strict=True))


def probe_outputs():
    """The probe's summary table and dev-loss figure."""
    return [
        results("probe/summary.csv"),
        results("probe/dev_loss.pdf"),
        results("probe/dev_loss.png"),
    ]

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
from babyteach.data.fetch import DATASETS, mirror_from  # noqa: E402
from babyteach.errors import InputError  # noqa: E402
from babyteach.evaluate.families import FAMILIES  # noqa: E402
from babyteach.evaluate.glue import FinetuneConfig  # noqa: E402
from babyteach import layout  # noqa: E402
from babyteach.layout import checkpoint_dir as run_checkpoint_dir  # noqa: E402
from babyteach.layout import results_root  # noqa: E402
from babyteach.probe import probe_runs  # noqa: E402
from babyteach.report.finished import Item, finished, missing_note  # noqa: E402
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


def table1_corpora():
    """The corpora of Table 1: the configured release with each track of report.table1_tracks."""
    release = config["corpus"]["release"]
    return [
        CorpusId(release, track).name for track in config["report"]["table1_tracks"]
    ]


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


def search_outputs():
    """The architecture-search result of every configured peer count."""
    return expand(
        results("search/peers-{peers}.json"), peers=config["search"]["peer_counts"]
    )


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


#: The run folder of each training rule as a wildcard pattern: {corpus}/train/<run> (babyteach.layout).
TRAIN_RUN = {
    shape: "{corpus}/train/" + layout.run_template(shape)
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


def student_run(method, peers, seed, alpha=None):
    """The folder under results/<corpus>/train of one student run (mutual methods: at alpha, by
    default mutual.alpha)."""
    if layout.traits(method).mutual and alpha is None:
        alpha = config["mutual"]["alpha"]
    return layout.Run(method, peers, alpha, seed).name


def models_of_runs(runs):
    """(run, model) of every saved model of the given runs, teacher or peer-1..p."""
    return [
        (run, model)
        for run in dict.fromkeys(runs)
        for model in layout.parse_run(run).models
    ]


def main_runs():
    """The teacher for every seed; every student method at the largest peer count and the main alpha."""
    peers = max(config["search"]["peer_counts"])
    runs = []
    for seed in config["seeds"]:
        runs.append(layout.teacher_run(seed).name)
        runs += [
            student_run(method, peers, seed)
            for method in layout.planned_student_methods()
        ]
    return runs


def ablation_runs(ablation):
    """The runs of one ablation: peers (DWML per peer count), alpha (DWML per alpha), weights (DML vs
    DWML) or size (the searched students trained alone with plain MLM, beside the DWML peers of the
    same architectures and the RoBERTa-base teacher)."""
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
        elif ablation == "size":
            runs += [
                f"baseline/seed-{seed}",
                student_run("baseline", peers, seed),
                student_run("dwml", peers, seed),
            ]
        else:
            raise ValueError(f"unknown ablation {ablation!r}")
    return runs


ABLATIONS = ("peers", "alpha", "weights", "size")


def run_outputs(runs):
    """The training output folders of the given runs."""
    return [results(f"{CORPUS.name}/train/{run}") for run in dict.fromkeys(runs)]


def train_outputs():
    """Every model of the main comparison (Table 2): baseline and all student methods."""
    return run_outputs(main_runs())


def zero_shot_outputs(runs=None):
    """One zero-shot result per model of ``runs`` (default: the main runs) and minimal-pair dataset."""
    families = [name for name in config["evaluation_data"] if name in FAMILIES]
    return [
        results(f"{CORPUS.name}/eval/{run}/{model}/{family}.json")
        for run, model in models_of_runs(main_runs() if runs is None else runs)
        for family in families
    ]


def finetune_outputs(runs=None):
    """One (Super)GLUE result per model of ``runs`` (default: the main runs), if glue-filtered is evaluated."""
    if "glue-filtered" not in config["evaluation_data"]:
        return []
    return [
        results(f"{CORPUS.name}/eval/{run}/{model}/glue.json")
        for run, model in models_of_runs(main_runs() if runs is None else runs)
    ]


def evaluation_outputs(runs=None):
    """Every evaluation result (zero-shot and fine-tuning) of the models of ``runs`` (default: main)."""
    return zero_shot_outputs(runs) + finetune_outputs(runs)


def ablation_outputs(ablation):
    """The trained models of one ablation and their evaluation results."""
    runs = ablation_runs(ablation)
    return run_outputs(runs) + evaluation_outputs(runs)


# --- the paper's tables and figures --------------------------------------------------


def families_of(benchmark):
    """The configured minimal-pair families that measure ``benchmark`` (blimp, supplement, ewok)."""
    return [
        name
        for name in config["evaluation_data"]
        if name in FAMILIES and FAMILIES[name].benchmark == benchmark
    ]


def eval_files(runs, families, glue=False, corpus=CORPUS.name):
    """The evaluation results of the given runs' models for ``families`` (and glue.json) on ``corpus``."""
    stems = list(families) + (
        ["glue"] if glue and "glue-filtered" in config["evaluation_data"] else []
    )
    return [
        results(f"{corpus}/eval/{run}/{model}/{stem}.json")
        for run, model in models_of_runs(runs)
        for stem in stems
    ]


def baseline_runs():
    """The baseline/teacher run of every seed."""
    return [f"baseline/seed-{seed}" for seed in config["seeds"]]


ZERO_SHOT_BENCHMARKS = ("blimp", "supplement", "ewok")


def table_inputs(table):
    """The named inputs of one table (``runs`` are training folders: their train_summary.json)."""
    zero_shot = [f for b in ZERO_SHOT_BENCHMARKS for f in families_of(b)]
    main = main_runs()
    dwml_main = [
        student_run("dwml", max(config["search"]["peer_counts"]), s)
        for s in config["seeds"]
    ]
    if (
        table == "table1"
    ):  # every track of report.table1_tracks: trained and evaluated on its corpus
        return {
            "eval": [
                path
                for corpus in table1_corpora()
                for path in eval_files(
                    baseline_runs() + dwml_main, zero_shot, glue=True, corpus=corpus
                )
            ]
        }
    if table == "table2":
        return {"eval": eval_files(main, zero_shot), "search": max_peers_search()}
    if table == "table3":
        return {"search": search_outputs(), "runs": run_outputs(main)}
    if table == "table4":
        return {"glue": finetune_outputs()}
    if table == "table5":
        return {"corpus": results(f"{CORPUS.name}/stats/corpus.csv")}
    if table in TABLE_BENCHMARK:
        return {"eval": eval_files(main, families_of(TABLE_BENCHMARK[table]))}
    if table == "table9":
        return {"runs": run_outputs(main)}
    raise ValueError(f"unknown table {table!r}")


#: Tables of one zero-shot benchmark's phenomena / tasks / domains.
TABLE_BENCHMARK = {"table6": "blimp", "table7": "supplement", "table8": "ewok"}


def table_input_files(wildcards):
    """Input function of the table rule: the named inputs of {table}."""
    return table_inputs(wildcards.table)


def table_params(wildcards):
    """Params function of the table rule: the options of {table}."""
    return table_options(wildcards.table)


def table_options(table):
    """The options of one table: the seeds, peer count and alpha the workflow ran."""
    options = {}
    if table in ("table1", "table2", "table6", "table7", "table8", "table9"):
        options.update(seeds=config["seeds"], alpha=config["mutual"]["alpha"])
    if table in ("table1", "table6", "table7", "table8", "table9"):
        options["peers"] = max(config["search"]["peer_counts"])
    if table == "table1":
        options["tracks"] = config["report"]["table1_tracks"]
    return options


def max_peers_search():
    """The search result of the largest peer count (the main comparison's peers)."""
    return results(f"search/peers-{max(config['search']['peer_counts'])}.json")


def tables():
    """The tables this config can build: those whose benchmarks are evaluated."""
    names = ["table1", "table2", "table3", "table5", "table9"]
    if "glue-filtered" in config["evaluation_data"]:
        names.append("table4")
    names += [t for t, b in TABLE_BENCHMARK.items() if families_of(b)]
    return sorted(names)


def table_outputs(names=None):
    """The .tex and .csv of the given tables (default: every table this config can build)."""
    return [
        results(f"tables/{name}.{ext}")
        for name in (tables() if names is None else names)
        for ext in ("tex", "csv")
    ]


def figure_benchmark():
    """The benchmark Figure 2 plots: BLiMP, else the first configured zero-shot benchmark."""
    configured = [b for b in ZERO_SHOT_BENCHMARKS if families_of(b)]
    if not configured:
        raise ValueError(
            "evaluation_data: Figure 2 needs a BLiMP, supplement or EWoK family"
        )
    return configured[0]


def figure_inputs(figure):
    """The named inputs of one figure (training runs are passed as their folders)."""
    peers = max(config["search"]["peer_counts"])
    dwml = [student_run("dwml", peers, s) for s in config["seeds"]]
    if figure == "figure2":
        families = families_of(figure_benchmark())
        return {
            "peers_evals": eval_files(ablation_runs("peers"), families),
            "alpha_evals": eval_files(ablation_runs("alpha"), families),
            "weight_summaries": run_outputs(dwml),
            "weight_evals": eval_files(dwml, families),
            "reference": eval_files(baseline_runs(), families),
        }
    if figure == "figure3":
        weighted = [
            student_run(m, peers, s)
            for m in ("dwml", "kd_dwml")
            for s in config["seeds"]
        ]
        return {"peer_weights": run_outputs(weighted)}
    if figure == "figure4":
        return {"gpu": run_outputs(main_runs()), "summaries": run_outputs(main_runs())}
    if figure == "figure_size":
        runs = ablation_runs("size")
        return {
            "summaries": run_outputs(runs),
            "evals": eval_files(runs, families_of(figure_benchmark())),
        }
    if figure == "training_loss":
        return {
            "metrics": run_outputs(main_runs()),
            "summaries": run_outputs(main_runs()),
        }
    raise ValueError(f"unknown figure {figure!r}")


FIGURES = ("figure2", "figure3", "figure4", "figure_size", "training_loss")


def figure_input_files(wildcards):
    """Input function of the figure rule: the named inputs of {figure}."""
    return figure_inputs(wildcards.figure)


def figure_params(wildcards):
    """Params function of the figure rule: the benchmark of Figure 2 and of the size figure."""
    if wildcards.figure in ("figure2", "figure_size"):
        return {"benchmark": figure_benchmark()}
    return {}


def figure_outputs(names=FIGURES):
    """The PDF and PNG of the given figures (default: all)."""
    return [
        results(f"figures/{name}.{ext}") for name in names for ext in ("pdf", "png")
    ]


def figure_target(name):
    """The target rule of figure ``name`` (training_loss → figure_training_loss)."""
    return name if name.startswith("figure") else f"figure_{name}"


def report_items():
    """Every table and figure this configuration builds, with its target, in report order."""
    return [Item(name, tuple(table_outputs([name]))) for name in tables()] + [
        Item(figure_target(name), tuple(figure_outputs([name]))) for name in FIGURES
    ]


def finished_outputs(wildcards):
    """Input function of the target finished, the tables and figures built so far (and the probe's, if
    built); prints which are missing and the command that builds them (stderr)."""
    probe = Item("probe", tuple(probe_outputs()))
    done = finished([*report_items(), probe])
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
        results(f"probe/{CORPUS.name}/eval/{name}/teacher/{dataset}.json")
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

# The recipe probe (target `probe`, not in `all`): the teacher architecture trained for
# probe.token_budget tokens at each probe.settings entry, scored zero-shot on probe.dataset, and
# summarised against the corpus's unigram baseline (results/probe/summary.csv, dev_loss.pdf).


# The baseline's training job (shell, torchrun for gpu > 1) with the setting's training values.
# One thread per job, here and in evaluate_probe: the probe's small CPU runs gain little from a
# second thread, and two settings then train side by side (the demo probe on 2 shared cores:
# 1 min 44 s with one thread per job, 15 min with two, whose threads waited on each other).
use rule train_baseline as train_probe with:
    output:
        directory(results("probe/{corpus}/train/{setting}")),
    log:
        logs("probe/{corpus}/train/{setting}.log"),
    benchmark:
        benchmarks("probe/{corpus}/train/{setting}.tsv")
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        settings=probe_train_settings,
        job=probe_train_job,
        launcher=training_launcher,


# The project's zero-shot scoring (evaluate_zero_shot's script and evaluation settings).
use rule evaluate_zero_shot as evaluate_probe with:
    input:
        run=results("probe/{corpus}/train/{setting}"),
        data=results("raw/{family}"),
    output:
        results("probe/{corpus}/eval/{setting}/{model}/{family}.json"),
    log:
        logs("probe/{corpus}/eval/{setting}/{model}/{family}.log"),
    benchmark:
        benchmarks("probe/{corpus}/eval/{setting}/{model}/{family}.tsv")
    threads: 1


rule probe_summary:
    """One row per probe setting: its values, final dev loss, unigram baseline, margin, accuracy, corpus."""
    input:
        runs=probe_run_outputs(),
        evals=probe_eval_outputs(),
        shards=results(f"{CORPUS.name}/shards"),
    output:
        results("probe/summary.csv"),
    log:
        logs("probe/summary.log"),
    benchmark:
        benchmarks("probe/summary.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        settings=probe_overrides(),
        corpus=CORPUS.name,
    script:
        "../scripts/probe_summary.py"


rule probe_figure:
    """Dev loss against training tokens per probe setting, with the unigram-baseline lines."""
    input:
        summary=results("probe/summary.csv"),
        runs=probe_run_outputs(),
    output:
        pdf=results("probe/dev_loss.pdf"),
        png=report(
            results("probe/dev_loss.png"),
            caption="../report/probe.rst",
            category="Recipe probe",
        ),
    log:
        logs("probe/dev_loss.log"),
    benchmark:
        benchmarks("probe/dev_loss.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../scripts/probe_figure.py"

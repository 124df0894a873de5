"""What a configuration trains, evaluates and reports: the runs of the main comparison and of each
ablation, and the files each table and figure reads.

The paper's tables and figures decide which runs exist: the main comparison (Table 2: the teacher
and every student method at the largest peer count and the main α) and the ablations (Figure 2: DWML
per peer count and per α, DML against DWML; the size figure: the students trained alone). The
workflow plans exactly these runs (:meth:`Plan.train_outputs`, :meth:`Plan.ablation_outputs`) and
passes each table and figure the explicit list of files it reads (:meth:`Plan.table_inputs`,
:meth:`Plan.figure_inputs`), so the DAG's dependencies are exact::

    plan = Plan(config)                    # the validated config mapping (workflow/rules/common.smk)
    plan.main_runs()                       # ["baseline/seed-0", "kd/peers-4/seed-0", …]
    plan.table_inputs("table2")            # {"eval": [results/2024-10M/eval/…/blimp-filtered.json, …],
                                           #  "search": "results/search/peers-4.json"}

Methods and run names come from :mod:`babyteach.layout`: a method added there is in the main
comparison and its tables without an edit here. Torch-free: the workflow builds its DAG from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from babyteach import layout
from babyteach.data.corpora import CorpusId
from babyteach.data.registry import GLUE_DATASET
from babyteach.evaluate.families import FAMILIES
from babyteach.report.finished import Item

#: The ablations (targets ``ablation_<name>``).
ABLATIONS = ("peers", "alpha", "weights", "size")

#: Fixed against dynamic peer weights: DML (ω = 1/M) and DWML, otherwise the same.
WEIGHTS_ABLATION = ("dml", "dwml")

#: The zero-shot benchmarks, in table order.
ZERO_SHOT_BENCHMARKS = ("blimp", "supplement", "ewok")

#: Tables of one zero-shot benchmark's phenomena / tasks / domains.
TABLE_BENCHMARK = {"table6": "blimp", "table7": "supplement", "table8": "ewok"}

#: Every figure (file stems under ``figures/``).
FIGURES = ("figure2", "figure3", "figure4", "figure_size", "training_loss")


def figure_target(name: str) -> str:
    """The target rule of figure ``name`` (training_loss → figure_training_loss)."""
    return name if name.startswith("figure") else f"figure_{name}"


def builder_options(builder: Callable[..., Any], inputs: Iterable[str]) -> tuple[str, ...]:
    """The options a table or figure builder takes: its keyword-only parameters that are not among its
    ``inputs`` (the input names of its rule), in the order it declares them. Read from the signature, so
    that the options :meth:`Plan.table_options` and :meth:`Plan.figure_options` pass, the ones
    ``write_table`` and ``write_figure`` accept, and the builder's own never differ."""
    inputs = set(inputs)
    return tuple(
        p.name
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in inputs
    )


@dataclass(frozen=True)
class Plan:
    """The runs and files of one configuration (the validated config mapping, defaults filled in)."""

    config: Mapping[str, Any]

    # --- where --------------------------------------------------------------------------------

    @property
    def corpus(self) -> str:
        """The configured corpus id, e.g. ``2024-10M`` (keys ``corpus.release``, ``corpus.track``)."""
        return CorpusId(self.config["corpus"]["release"], self.config["corpus"]["track"]).name

    def results(self, path: str) -> str:
        """``path`` under the configuration's results root (key ``results_dir``)."""
        return f"{layout.results_root(self.config['results_dir'])}/{path}"

    # --- the runs -----------------------------------------------------------------------------

    @property
    def peers(self) -> int:
        """The main comparison's peer count: the largest of ``search.peer_counts``."""
        return max(self.config["search"]["peer_counts"])

    @property
    def seeds(self) -> list[int]:
        """The configured seeds (key ``seeds``)."""
        return list(self.config["seeds"])

    def student_run(self, method: str, peers: int, seed: int, alpha: float | None = None) -> str:
        """The run name of ``method``'s peers; a mutual method at ``alpha``, by default ``mutual.alpha``."""
        if layout.traits(method).mutual and alpha is None:
            alpha = self.config["mutual"]["alpha"]
        return layout.Run(method, peers, alpha, seed).name

    def teacher_runs(self) -> list[str]:
        """The teacher (baseline) run of every seed."""
        return [layout.teacher_run(seed).name for seed in self.seeds]

    def main_runs(self) -> list[str]:
        """The teacher for every seed; every student method at the largest peer count and the main alpha."""
        runs = []
        for seed in self.seeds:
            runs.append(layout.teacher_run(seed).name)
            runs += [self.student_run(method, self.peers, seed) for method in layout.planned_student_methods()]
        return runs

    def ablation_runs(self, ablation: str) -> list[str]:
        """The runs of one ablation: peers (DWML per peer count), alpha (DWML per alpha), weights (DML vs
        DWML) or size (the searched students trained alone with plain MLM, beside the DWML peers of the
        same architectures and the RoBERTa-base teacher)."""
        dwml, runs = layout.PAPER_METHOD, []
        for seed in self.seeds:
            if ablation == "peers":
                runs += [self.student_run(dwml, p, seed) for p in self.config["search"]["peer_counts"]]
            elif ablation == "alpha":
                runs += [self.student_run(dwml, self.peers, seed, a) for a in self.config["ablations"]["alphas"]]
            elif ablation == "weights":
                runs += [self.student_run(method, self.peers, seed) for method in WEIGHTS_ABLATION]
            elif ablation == "size":
                runs += [
                    layout.teacher_run(seed).name,
                    self.student_run(layout.teacher_method(), self.peers, seed),
                    self.student_run(dwml, self.peers, seed),
                ]
            else:
                raise ValueError(f"unknown ablation {ablation!r}; ablations: {', '.join(ABLATIONS)}")
        return runs

    def paper_method_runs(self) -> list[str]:
        """DWML at the main comparison's peer count and alpha, for every seed."""
        return [self.student_run(layout.PAPER_METHOD, self.peers, seed) for seed in self.seeds]

    @staticmethod
    def models_of_runs(runs: Iterable[str]) -> list[tuple[str, str]]:
        """(run, model) of every saved model of the given runs (once each), teacher or peer-1..p."""
        return [(run, model) for run in dict.fromkeys(runs) for model in layout.parse_run(run).models]

    # --- the targets' files -------------------------------------------------------------------

    def run_outputs(self, runs: Iterable[str]) -> list[str]:
        """The training output folders of the given runs (once each)."""
        return [self.results(f"{self.corpus}/train/{run}") for run in dict.fromkeys(runs)]

    def train_outputs(self) -> list[str]:
        """Every model of the main comparison (Table 2): the teacher and all student methods."""
        return self.run_outputs(self.main_runs())

    def families_of(self, benchmark: str) -> list[str]:
        """The configured minimal-pair families that measure ``benchmark`` (blimp, supplement, ewok)."""
        return [n for n in self.config["evaluation_data"] if n in FAMILIES and FAMILIES[n].benchmark == benchmark]

    def zero_shot_families(self) -> list[str]:
        """Every configured minimal-pair family, in the configured order."""
        return [name for name in self.config["evaluation_data"] if name in FAMILIES]

    def has_glue(self) -> bool:
        """Whether (Super)GLUE is evaluated (``glue-filtered`` in ``evaluation_data``)."""
        return GLUE_DATASET in self.config["evaluation_data"]

    def zero_shot_outputs(self, runs: Sequence[str] | None = None) -> list[str]:
        """One zero-shot result per model of ``runs`` (default: the main runs) and minimal-pair family."""
        return self.eval_files(self.main_runs() if runs is None else runs, self.zero_shot_families())

    def finetune_outputs(self, runs: Sequence[str] | None = None) -> list[str]:
        """One (Super)GLUE result per model of ``runs`` (default: the main runs), if glue-filtered is evaluated."""
        return self.eval_files(self.main_runs() if runs is None else runs, [], glue=True)

    def evaluation_outputs(self, runs: Sequence[str] | None = None) -> list[str]:
        """Every evaluation result (zero-shot and fine-tuning) of the models of ``runs`` (default: main)."""
        return self.zero_shot_outputs(runs) + self.finetune_outputs(runs)

    def ablation_outputs(self, ablation: str) -> list[str]:
        """The trained models of one ablation and their evaluation results."""
        runs = self.ablation_runs(ablation)
        return self.run_outputs(runs) + self.evaluation_outputs(runs)

    def search_outputs(self) -> list[str]:
        """The architecture-search result of every configured peer count."""
        return [self.results(f"search/peers-{p}.json") for p in self.config["search"]["peer_counts"]]

    def max_peers_search(self) -> str:
        """The search result of the largest peer count (the main comparison's peers)."""
        return self.results(f"search/peers-{self.peers}.json")

    def eval_files(
        self, runs: Iterable[str], families: Iterable[str], glue: bool = False, corpus: str | None = None
    ) -> list[str]:
        """The evaluation results of the given runs' models for ``families`` (and glue.json, when
        ``glue`` and it is configured) on ``corpus`` (default: the configured one)."""
        stems = list(families) + (["glue"] if glue and self.has_glue() else [])
        return [
            self.results(f"{corpus or self.corpus}/eval/{run}/{model}/{stem}.json")
            for run, model in self.models_of_runs(runs)
            for stem in stems
        ]

    # --- tables -------------------------------------------------------------------------------

    def table1_corpora(self) -> list[str]:
        """The corpora of Table 1: the configured release with each track of ``report.table1_tracks``."""
        release = self.config["corpus"]["release"]
        return [CorpusId(release, track).name for track in self.config["report"]["table1_tracks"]]

    def tables(self) -> list[str]:
        """The tables this config can build: those whose benchmarks are evaluated."""
        names = ["table1", "table2", "table3", "table5", "table9"]
        if self.has_glue():
            names.append("table4")
        names += [t for t, b in TABLE_BENCHMARK.items() if self.families_of(b)]
        return sorted(names)

    def table_inputs(self, table: str) -> dict[str, Any]:
        """The named inputs of one table (``runs`` are training folders: their train_summary.json)."""
        zero_shot = [f for b in ZERO_SHOT_BENCHMARKS for f in self.families_of(b)]
        main = self.main_runs()
        if table == "table1":  # every track of report.table1_tracks: trained and evaluated on its corpus
            runs = self.teacher_runs() + self.paper_method_runs()
            return {"eval": [p for c in self.table1_corpora() for p in self.eval_files(runs, zero_shot, True, c)]}
        if table == "table2":
            return {"eval": self.eval_files(main, zero_shot), "search": self.max_peers_search()}
        if table == "table3":
            return {"search": self.search_outputs(), "runs": self.run_outputs(main)}
        if table == "table4":
            return {"glue": self.finetune_outputs()}
        if table == "table5":
            return {"corpus": self.results(f"{self.corpus}/stats/corpus.csv")}
        if table in TABLE_BENCHMARK:
            return {"eval": self.eval_files(main, self.families_of(TABLE_BENCHMARK[table]))}
        if table == "table9":
            return {"runs": self.run_outputs(main)}
        raise ValueError(f"unknown table {table!r}")

    def table_options(self, table: str) -> dict[str, Any]:
        """The options of one table: the seeds, peer count and alpha the workflow ran."""
        options: dict[str, Any] = {}
        if table in ("table1", "table2", "table6", "table7", "table8", "table9"):
            options.update(seeds=self.config["seeds"], alpha=self.config["mutual"]["alpha"])
        if table in ("table1", "table6", "table7", "table8", "table9"):
            options["peers"] = self.peers
        if table == "table1":
            options["tracks"] = self.config["report"]["table1_tracks"]
        return options

    def table_outputs(self, names: Sequence[str] | None = None) -> list[str]:
        """The .tex and .csv of the given tables (default: every table this config can build)."""
        return [
            self.results(f"tables/{name}.{ext}")
            for name in (self.tables() if names is None else names)
            for ext in ("tex", "csv")
        ]

    # --- figures ------------------------------------------------------------------------------

    def figure_benchmark(self) -> str:
        """The benchmark Figure 2 plots: BLiMP, else the first configured zero-shot benchmark."""
        configured = [b for b in ZERO_SHOT_BENCHMARKS if self.families_of(b)]
        if not configured:
            raise ValueError("evaluation_data: Figure 2 needs a BLiMP, supplement or EWoK family")
        return configured[0]

    def figure_inputs(self, figure: str) -> dict[str, list[str]]:
        """The named inputs of one figure (training runs are passed as their folders)."""
        dwml = self.paper_method_runs()
        if figure == "figure2":
            families = self.families_of(self.figure_benchmark())
            return {
                "peers_evals": self.eval_files(self.ablation_runs("peers"), families),
                "alpha_evals": self.eval_files(self.ablation_runs("alpha"), families),
                "weight_summaries": self.run_outputs(dwml),
                "weight_evals": self.eval_files(dwml, families),
                "reference": self.eval_files(self.teacher_runs(), families),
            }
        if figure == "figure3":
            weighted = [
                self.student_run(method, self.peers, seed)
                for method in layout.weight_learning_methods()
                for seed in self.seeds
            ]
            return {"peer_weights": self.run_outputs(weighted)}
        if figure == "figure4":
            return {"gpu": self.train_outputs(), "summaries": self.train_outputs()}
        if figure == "figure_size":
            runs = self.ablation_runs("size")
            families = self.families_of(self.figure_benchmark())
            return {"summaries": self.run_outputs(runs), "evals": self.eval_files(runs, families)}
        if figure == "training_loss":
            return {"metrics": self.train_outputs(), "summaries": self.train_outputs()}
        raise ValueError(f"unknown figure {figure!r}")

    def figure_options(self, figure: str) -> dict[str, str]:
        """The options of one figure: the benchmark of Figure 2 and of the size figure."""
        return {"benchmark": self.figure_benchmark()} if figure in ("figure2", "figure_size") else {}

    def figure_outputs(self, names: Sequence[str] = FIGURES) -> list[str]:
        """The PDF and PNG of the given figures (default: all)."""
        return [self.results(f"figures/{name}.{ext}") for name in names for ext in ("pdf", "png")]

    def report_items(self) -> list[Item]:
        """Every table and figure this configuration builds, with its target, in report order."""
        return [Item(name, tuple(self.table_outputs([name]))) for name in self.tables()] + [
            Item(figure_target(name), tuple(self.figure_outputs([name]))) for name in FIGURES
        ]

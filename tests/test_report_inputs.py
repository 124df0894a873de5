"""babyteach.report.inputs: which runs a configuration trains and which files each table and figure reads,
written out by hand for a small configuration."""

from __future__ import annotations

import pytest

from babyteach.report.inputs import FIGURES, Plan, figure_target

CONFIG = {
    "results_dir": "out/",
    "corpus": {"release": "2024", "track": "10M"},
    "search": {"peer_counts": [1, 2]},
    "seeds": [0, 1],
    "mutual": {"alpha": 0.5},
    "ablations": {"alphas": [0.3, 0.5]},
    "evaluation_data": ["ewok-fast", "blimp-fast", "glue-filtered"],
    "report": {"table1_tracks": ["10M", "100M"]},
}
PLAN = Plan(CONFIG)

MAIN_SEED_0 = [
    "baseline/seed-0",
    "kd/peers-2/seed-0",
    "sd/peers-2/seed-0",
    "dml/peers-2/alpha-0.5/seed-0",
    "dwml/peers-2/alpha-0.5/seed-0",
    "kd_dwml/peers-2/alpha-0.5/seed-0",
]


def test_main_runs_are_the_teacher_and_every_student_method_at_the_largest_peer_count():
    assert PLAN.main_runs() == MAIN_SEED_0 + [run.replace("seed-0", "seed-1") for run in MAIN_SEED_0]
    assert PLAN.train_outputs()[:2] == ["out/2024-10M/train/baseline/seed-0", "out/2024-10M/train/kd/peers-2/seed-0"]


def test_ablation_runs():
    assert PLAN.ablation_runs("peers") == [
        "dwml/peers-1/alpha-0.5/seed-0",
        "dwml/peers-2/alpha-0.5/seed-0",
        "dwml/peers-1/alpha-0.5/seed-1",
        "dwml/peers-2/alpha-0.5/seed-1",
    ]
    assert PLAN.ablation_runs("alpha")[:2] == ["dwml/peers-2/alpha-0.3/seed-0", "dwml/peers-2/alpha-0.5/seed-0"]
    assert PLAN.ablation_runs("weights")[:2] == ["dml/peers-2/alpha-0.5/seed-0", "dwml/peers-2/alpha-0.5/seed-0"]
    assert PLAN.ablation_runs("size")[:3] == [
        "baseline/seed-0",
        "baseline/peers-2/seed-0",
        "dwml/peers-2/alpha-0.5/seed-0",
    ]
    with pytest.raises(ValueError, match="unknown ablation 'depth'"):
        PLAN.ablation_runs("depth")


def test_every_model_of_a_run_is_evaluated_on_every_configured_family_and_glue():
    assert PLAN.evaluation_outputs(["baseline/seed-0", "dml/peers-2/alpha-0.5/seed-1"]) == [
        "out/2024-10M/eval/baseline/seed-0/teacher/ewok-fast.json",
        "out/2024-10M/eval/baseline/seed-0/teacher/blimp-fast.json",
        "out/2024-10M/eval/dml/peers-2/alpha-0.5/seed-1/peer-1/ewok-fast.json",
        "out/2024-10M/eval/dml/peers-2/alpha-0.5/seed-1/peer-1/blimp-fast.json",
        "out/2024-10M/eval/dml/peers-2/alpha-0.5/seed-1/peer-2/ewok-fast.json",
        "out/2024-10M/eval/dml/peers-2/alpha-0.5/seed-1/peer-2/blimp-fast.json",
        "out/2024-10M/eval/baseline/seed-0/teacher/glue.json",
        "out/2024-10M/eval/dml/peers-2/alpha-0.5/seed-1/peer-1/glue.json",
        "out/2024-10M/eval/dml/peers-2/alpha-0.5/seed-1/peer-2/glue.json",
    ]
    without_glue = Plan({**CONFIG, "evaluation_data": ["blimp-fast"]})
    assert without_glue.finetune_outputs() == [] and "table4" not in without_glue.tables()


def test_table1_reads_the_teacher_and_dwml_on_every_track():
    evals = PLAN.table_inputs("table1")["eval"]
    # 2 tracks x 2 seeds x (teacher + 2 DWML peers) x (BLiMP, EWoK, GLUE)
    assert len(evals) == 2 * 2 * 3 * 3
    assert evals[:3] == [
        "out/2024-10M/eval/baseline/seed-0/teacher/blimp-fast.json",  # zero-shot in benchmark order
        "out/2024-10M/eval/baseline/seed-0/teacher/ewok-fast.json",
        "out/2024-10M/eval/baseline/seed-0/teacher/glue.json",
    ]
    assert "out/2024-100M/eval/dwml/peers-2/alpha-0.5/seed-1/peer-2/glue.json" in evals
    assert not any("/kd/" in path or "/dml/" in path for path in evals)
    assert PLAN.table_options("table1") == {"seeds": [0, 1], "alpha": 0.5, "peers": 2, "tracks": ["10M", "100M"]}


def test_the_other_tables_inputs():
    table2 = PLAN.table_inputs("table2")
    assert table2["search"] == "out/search/peers-2.json"
    assert len(table2["eval"]) == 2 * (1 + 5 * 2) * 2  # seeds x models of the main runs x (BLiMP, EWoK)
    assert PLAN.table_inputs("table3") == {
        "search": ["out/search/peers-1.json", "out/search/peers-2.json"],
        "runs": PLAN.train_outputs(),
    }
    assert PLAN.table_inputs("table5") == {"corpus": "out/2024-10M/stats/corpus.csv"}
    assert PLAN.table_inputs("table6")["eval"][0] == "out/2024-10M/eval/baseline/seed-0/teacher/blimp-fast.json"
    assert all(path.endswith("ewok-fast.json") for path in PLAN.table_inputs("table8")["eval"])
    assert PLAN.tables() == ["table1", "table2", "table3", "table4", "table5", "table6", "table8", "table9"]
    assert PLAN.table_outputs(["table5"]) == ["out/tables/table5.tex", "out/tables/table5.csv"]
    assert PLAN.table_options("table3") == {}
    with pytest.raises(ValueError, match="unknown table 'table10'"):
        PLAN.table_inputs("table10")


def test_figure_inputs():
    figure2 = PLAN.figure_inputs("figure2")
    assert figure2["reference"] == [
        "out/2024-10M/eval/baseline/seed-0/teacher/blimp-fast.json",
        "out/2024-10M/eval/baseline/seed-1/teacher/blimp-fast.json",
    ]
    assert figure2["weight_summaries"] == [
        "out/2024-10M/train/dwml/peers-2/alpha-0.5/seed-0",
        "out/2024-10M/train/dwml/peers-2/alpha-0.5/seed-1",
    ]
    assert PLAN.figure_inputs("figure3")["peer_weights"] == [
        "out/2024-10M/train/dwml/peers-2/alpha-0.5/seed-0",
        "out/2024-10M/train/dwml/peers-2/alpha-0.5/seed-1",
        "out/2024-10M/train/kd_dwml/peers-2/alpha-0.5/seed-0",
        "out/2024-10M/train/kd_dwml/peers-2/alpha-0.5/seed-1",
    ]
    assert PLAN.figure_options("figure_size") == {"benchmark": "blimp"}
    # without BLiMP, Figure 2 plots the first configured zero-shot benchmark
    assert Plan({**CONFIG, "evaluation_data": ["ewok-fast"]}).figure_options("figure2") == {"benchmark": "ewok"}
    with pytest.raises(ValueError, match="Figure 2 needs"):
        Plan({**CONFIG, "evaluation_data": ["glue-filtered"]}).figure_inputs("figure2")
    assert PLAN.figure_outputs(["training_loss"]) == ["out/figures/training_loss.pdf", "out/figures/training_loss.png"]
    items = PLAN.report_items()
    assert [item.target for item in items][-len(FIGURES) :] == [
        "figure2",
        "figure3",
        "figure4",
        "figure_size",
        "figure_training_loss",
    ]
    assert figure_target("figure3") == "figure3"


def test_every_planned_table_takes_the_options_the_workflow_passes():
    from babyteach.report.tables import TABLES

    for table in PLAN.tables():
        assert set(PLAN.table_options(table)) <= set(TABLES[table].options), table

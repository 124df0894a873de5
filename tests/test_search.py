"""Architecture search: targets, closed-form objective, grid optimum, determinism, bad input."""

from __future__ import annotations

import json
import logging
import runpy
from types import SimpleNamespace

import pytest
import yaml

from babyteach.errors import InputError
from babyteach.models import Architecture, count_parameters
from babyteach.search import (
    students_from_search,
    SearchSpace,
    grid_optimum,
    int_range,
    search_architectures,
    write_search,
)
from conftest import REPO

# Hand-checkable: V = 100, block 14 → P = 16 positions. With width D and L layers,
# params = D·(V + P + 3) + L·(12D² + 13D) + D² + 3D + V  (heads do not matter):
#   D=8:  952 + 872·L + 188   → L=1: 2012, L=2: 2884
#   D=16: 1904 + 3280·L + 404 → L=1: 5588, L=2: 8868 (the teacher)
VOCAB, BLOCK = 100, 14
TEACHER = Architecture(2, 2, 16)
SPACE = SearchSpace(layers=(1, 2), heads=(1, 2), hidden=(8, 16))
HAND_PARAMS = {(1, 8): 2012, (2, 8): 2884, (1, 16): 5588, (2, 16): 8868}


def _search(n_peers=2, seed=0, space=SPACE, init_points=4, n_iter=4):
    return search_architectures(TEACHER, n_peers, space, VOCAB, BLOCK, init_points, n_iter, seed)


@pytest.fixture(scope="module")
def result():
    return _search()


def test_hand_counts_match_closed_form():
    for (layers, hidden), params in HAND_PARAMS.items():
        assert count_parameters(Architecture(layers, 1, hidden), VOCAB, BLOCK) == params


def test_targets_are_teacher_over_i_plus_one(result):
    assert result["teacher"] == {"arch": {"layers": 2, "heads": 2, "hidden": 16}, "params": 8868}
    assert [p["target"] for p in result["peers"]] == [8868 / 2, 8868 / 3]


def test_grid_optimum_is_the_hand_computed_one(result):
    first, second = (p["grid_optimum"] for p in result["peers"])
    # 4434: |5588 − 4434| = 1154 beats |2884 − 4434| = 1550
    assert (first["arch"]["layers"], first["arch"]["hidden"], first["params"]) == (1, 16, 5588)
    assert first["rel_error"] == pytest.approx(1154 / 4434)
    # 2956: |2884 − 2956| = 72
    assert (second["arch"]["layers"], second["arch"]["hidden"], second["params"]) == (2, 8, 2884)
    assert second["rel_error"] == pytest.approx(72 / 2956)
    assert first["equivalent_heads"] == [1, 2]


def test_bo_result_is_consistent_with_its_trace(result):
    for peer in result["peers"]:
        arch = Architecture(**peer["arch"])
        assert peer["params"] == count_parameters(arch, VOCAB, BLOCK)
        assert peer["rel_error"] == abs(peer["params"] - peer["target"]) / peer["target"]
        assert peer["gap"] == peer["rel_error"] - peer["grid_optimum"]["rel_error"]
        trace = peer["trace"]
        assert {t["phase"] for t in trace} == {"init", "bo"}
        for t in trace:
            assert t["params"] == count_parameters(Architecture(**t["arch"]), VOCAB, BLOCK)
            assert t["objective"] == -abs(t["params"] - peer["target"]) / peer["target"]
        assert -peer["rel_error"] == max(t["objective"] for t in trace)
        # the four distinct sizes are found in this tiny space
        assert peer["params"] == peer["grid_optimum"]["params"]


def test_deterministic_per_seed_and_independent_of_peer_count(result):
    again = _search()
    assert again == result
    assert _search(n_peers=1)["peers"][0] == result["peers"][0]
    other = _search(seed=1)
    assert [p["trace"] for p in other["peers"]] != [p["trace"] for p in result["peers"]]


def test_infeasible_points_are_mapped_and_unusable_widths_left_out():
    space = SearchSpace(layers=(1, 2), heads=(4, 2), hidden=(12, 5, 6, 6))
    assert space.heads == (2, 4) and space.hidden == (5, 6, 12)
    assert space.usable_hidden == (6, 12)
    assert space.to_dict()["unusable_hidden"] == [5]
    assert space.decode(1, heads_index=1, hidden_index=0) == Architecture(1, 2, 6)  # 4 ∤ 6 → 2
    assert space.decode(1, heads_index=1, hidden_index=1) == Architecture(1, 4, 12)
    assert len(space.architectures()) == 2 * 3
    found = _search(n_peers=1, space=space, init_points=3, n_iter=2)
    for t in found["peers"][0]["trace"]:
        assert t["arch"]["hidden"] % t["arch"]["heads"] == 0


def test_grid_optimum_enumerates_whole_space():
    target = 3000
    best = grid_optimum(SPACE, target, VOCAB, BLOCK)
    brute = min(abs(count_parameters(a, VOCAB, BLOCK) - target) for a in SPACE.architectures())
    assert abs(best["params"] - target) == brute == 116


def test_write_search_roundtrip(tmp_path, result):
    path = tmp_path / "search" / "2.json"
    write_search(path, result)
    assert json.loads(path.read_text()) == result
    assert [p.name for p in path.parent.iterdir()] == ["2.json"]


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"n_peers": 0}, "search.n_peers"),
        ({"init_points": 0, "n_iter": 0}, "search.init_points"),
        ({"n_iter": -1}, "search.n_iter"),
    ],
)
def test_bad_search_arguments_name_their_key(kwargs, key):
    with pytest.raises(InputError, match=key):
        _search(**kwargs)


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"layers": (3, 1), "heads": (1,), "hidden": (8,)}, "search.space.layers"),
        ({"layers": (0, 2), "heads": (1,), "hidden": (8,)}, "search.space.layers"),
        ({"layers": (1, 2), "heads": (), "hidden": (8,)}, "search.space.heads"),
        ({"layers": (1, 2), "heads": (1,), "hidden": []}, "search.space.hidden"),
        ({"layers": (1, 2), "heads": (0, 2), "hidden": (8,)}, "search.space.heads"),
        ({"layers": (1, 2), "heads": (3, 5), "hidden": (8, 16)}, "search.space: no size"),
    ],
)
def test_bad_space_names_its_key(fields, key):
    with pytest.raises(InputError, match=key):
        SearchSpace(**fields)


def test_paper_defaults():
    # The paper's teacher and space live in config.yaml (and its schema defaults) only.
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    teacher = Architecture.from_mapping(config["model"]["teacher"], "model.teacher")
    space = SearchSpace(**config["search"]["space"])
    assert teacher == Architecture(12, 12, 768)
    assert space.layers == (1, 12)
    assert space.heads == (1, 2, 4, 8, 12)
    assert space.hidden == int_range(64, 768, 64) == tuple(range(64, 769, 64))
    assert teacher in space.architectures()


def test_script_writes_json(tmp_path, monkeypatch):
    out, log = tmp_path / "search" / "2.json", tmp_path / "logs" / "search.log"
    log.parent.mkdir()
    snakemake = SimpleNamespace(
        log=[str(log)],
        output=[str(out)],
        wildcards=SimpleNamespace(peers="2"),
        params=SimpleNamespace(
            teacher={"layers": 2, "heads": 2, "hidden": 16},
            space={"layers": [1, 2], "heads": [1, 2], "hidden": [8, 16]},
            vocab_size=VOCAB,
            block_size=BLOCK,
            init_points=2,
            n_iter=1,
            seed=0,
        ),
    )
    monkeypatch.setattr(logging.root, "handlers", [])  # as under Snakemake: basicConfig takes effect
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    try:
        script = REPO / "workflow/scripts/search_architectures.py"
        runpy.run_path(str(script), init_globals={"snakemake": snakemake})
    finally:
        for handler in logging.root.handlers:
            handler.close()
    written = json.loads(out.read_text())
    assert [p["target"] for p in written["peers"]] == [8868 / 2, 8868 / 3]
    assert "peer 1" in log.read_text()


def test_students_from_search_reads_peers_in_order_and_names_bad_files(tmp_path):
    path = tmp_path / "peers-2.json"
    path.write_text(json.dumps({"peers": [
        {"peer": 1, "arch": {"layers": 2, "heads": 2, "hidden": 32}},
        {"peer": 2, "arch": {"layers": 1, "heads": 1, "hidden": 16}},
    ]}))
    assert students_from_search(path) == {
        "peer-1": Architecture(layers=2, heads=2, hidden=32),
        "peer-2": Architecture(layers=1, heads=1, hidden=16),
    }
    path.write_text("{truncated")
    with pytest.raises(InputError, match="peers-2.json"):
        students_from_search(path)

"""The three dependency lists (pyproject, environment.yml, the rules' conda env) agree."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO

# conda-forge spells two packages differently from PyPI.
CONDA_TO_PYPI = {"pytorch": "torch", "python": None, "pip": None, "pytest": None}


def _name(requirement: str) -> str:
    """The bare, lower-cased package name of a requirement string."""
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def _pypi_names(dependencies: list) -> set[str]:
    names = set()
    for dep in dependencies:
        if isinstance(dep, dict):  # the `pip:` sub-list
            continue
        name = CONDA_TO_PYPI.get(_name(dep), _name(dep))
        if name:
            names.add(name)
    return names


def _pyproject_runtime() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_name(d) for d in project["dependencies"]}


def test_pyproject_lists_the_issue_runtime_dependencies():
    expected = {
        "torch", "transformers", "tokenizers", "snakemake", "bayesian-optimization",
        "pandas", "matplotlib", "nvidia-ml-py", "tqdm", "pyyaml", "threadpoolctl",
    }
    assert _pyproject_runtime() == expected


def test_datasets_is_neither_declared_nor_imported():
    """``datasets`` was dropped (README, "(Super)GLUE as the organisers run it"): the GLUE loaders
    check every line themselves, and nothing else needs it. A module that imports it again must
    declare it again."""
    assert "datasets" not in _pyproject_runtime()
    pattern = re.compile(r"^\s*(import datasets\b|from datasets\b)", re.MULTILINE)
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "workflow").rglob("*.py"), *(REPO / "bench").glob("*.py")]
    assert sources and not [p for p in sources if pattern.search(p.read_text(encoding="utf-8"))]


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert _pypi_names(env["dependencies"]) == _pyproject_runtime()


def test_rule_conda_env_matches_pyproject():
    env = yaml.safe_load((REPO / "workflow/envs/babyteach.yaml").read_text())
    assert _pypi_names(env["dependencies"]) == _pyproject_runtime()


def test_deprecated_pynvml_package_is_not_used():
    # nvidia-ml-py provides the `pynvml` module; the `pynvml` PyPI package is deprecated.
    assert "pynvml" not in _pyproject_runtime()

"""Packaging: the three dependency lists (pyproject, environment.yml, the rules' conda env) agree, and the
documentation the code cites is in the repository and says what the code does."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

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
        "torch",
        "transformers",
        "tokenizers",
        "snakemake",
        "bayesian-optimization",
        "pandas",
        "matplotlib",
        "nvidia-ml-py",
        "tqdm",
        "pyyaml",
        "threadpoolctl",
    }
    assert _pyproject_runtime() == expected


def test_datasets_is_neither_declared_nor_imported():
    """``datasets`` was dropped (docs/EVALUATION.md, "No `datasets` dependency"): the GLUE loaders
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


# -- the documentation inside the repository ------------------------------------------------

#: Where the repository's own text lives (generated and installed folders are left out).
TEXT_DIRS = ("src", "workflow", "bench", "tests", "config", "docs")
TEXT_SUFFIXES = {".py", ".smk", ".md", ".yaml", ".yml", ".rst", ".toml", ".txt"}
ROOT_FILES = ("README.md", "Snakefile", "config.yaml", "pyproject.toml", "environment.yml", ".ci/run")
DESIGN_FOLDER = "shared" + "/design"  # spelled in two pieces so that this file does not cite it


def _text_files() -> list[Path]:
    files = [REPO / name for name in ROOT_FILES]
    for folder in TEXT_DIRS:
        files += [p for p in sorted((REPO / folder).rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES]
    return files


def _headings(path: Path) -> list[str]:
    return [
        line.lstrip("#").strip() for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"#+ ", line)
    ]


def test_every_cited_doc_and_section_exists_and_nothing_cites_the_design_folder():
    docs = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    bare = re.compile(r"(?<![\w/])(" + "|".join(map(re.escape, docs)) + r")")
    problems = []
    for path in _text_files():
        where = path.relative_to(REPO)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if DESIGN_FOLDER in line:
                problems.append(f"{where}:{number}: cites {DESIGN_FOLDER}; cite the docs/ file instead")
            for cited in re.findall(r"docs/[\w/.-]+?\.md", line):
                if not (REPO / cited).is_file():
                    problems.append(f"{where}:{number}: {cited} does not exist")
            for name in bare.findall(line):
                problems.append(f"{where}:{number}: cites {name} without its folder; write docs/{name}")
            # a cited section: a doc's path or the README, then the section's title in double quotes
            for cited, title in re.findall(r'(docs/[\w/.-]+?\.md)`*,? \(?"([^"]+)"', line):
                if (REPO / cited).is_file() and not any(h.startswith(title) for h in _headings(REPO / cited)):
                    problems.append(f"{where}:{number}: {cited} has no section {title!r}")
            for title in re.findall(r'README(?:\'s)?,? \(?"([^"]+)"', line):
                if not any(h.startswith(title) for h in _headings(REPO / "README.md")):
                    problems.append(f"{where}:{number}: README.md has no section {title!r}")
    assert not problems, "\n".join(problems)


def _package_imports(path: Path) -> set[str]:
    """The ``babyteach`` modules a source file imports, without the ``babyteach.`` prefix."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package imports absolutely")
        modules = (
            [node.module]
            if isinstance(node, ast.ImportFrom)
            else ([alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        )
        names |= {m.removeprefix("babyteach.") for m in modules if m and m.startswith("babyteach.")}
    return names


def _documented_layers() -> dict[str, int]:
    """docs/ARCHITECTURE.md's import layers: module → layer, from the block after its marker."""
    text = (REPO / "docs/ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("<!-- import layers: checked by tests/test_packaging.py -->", 1)[1].split("```")[1]
    layers: dict[str, int] = {}
    for line in block.strip().splitlines():
        word, number, *modules = line.split()
        assert word == "layer", f"docs/ARCHITECTURE.md: unexpected line in the import layers: {line!r}"
        for module in modules:
            assert module not in layers, f"docs/ARCHITECTURE.md lists {module} twice"
            layers[module] = int(number)
    return layers


def test_import_layers_in_the_architecture_doc_are_the_code_s():
    root = REPO / "src" / "babyteach"
    imports = {}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        if path.name == "__init__.py":
            assert not _package_imports(path), f"{path}: a package __init__ imports nothing of the package"
        else:
            imports[module] = _package_imports(path)
    layers = _documented_layers()
    assert set(layers) == set(imports), (
        f"docs/ARCHITECTURE.md's import layers: add {sorted(set(imports) - set(layers))}, "
        f"remove {sorted(set(layers) - set(imports))}"
    )
    for module, used in imports.items():
        # one above the highest layer it imports: nothing imports upward or sideways, so no cycle
        expected = 1 + max((layers[m] for m in used), default=0)
        assert layers[module] == expected, (
            f"docs/ARCHITECTURE.md puts {module} in layer {layers[module]}; its imports {sorted(used)} put it "
            f"in layer {expected}"
        )


def test_the_stage_packages_do_not_import_each_other_in_a_circle():
    # data/, evaluate/ and report/ seen whole (as a reader of the layout sees them): the graph of which
    # package imports which has no cycle, so each stage can be read knowing only the ones below it
    root = REPO / "src" / "babyteach"
    packages = {path.parent.name for path in root.glob("*/__init__.py")}
    uses: dict[str, set[str]] = {package: set() for package in packages}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            uses[package] |= {m.split(".")[0] for m in _package_imports(path)} & (packages - {package})
    assert {"data", "evaluate", "report"} <= packages

    def reaches(start: str, target: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in uses[start])

    assert [p for p in sorted(packages) if reaches(p, p)] == [], f"stage packages in a circle: {uses}"

"""Two training methods that exist only in tests, to show that adding a method is one class plus one
entry (docs/ARCHITECTURE.md, "Adding a method"). This module holds their traits (torch-free): the
tests register them in :data:`babyteach.layout.TRAITS`, in their own process or, through
:data:`PRELUDE`, in a Snakemake process; their classes are in tests/test_layout.py."""

from __future__ import annotations

from babyteach import layout
from babyteach.layout import MethodTraits, Section
from conftest import REPO

TOY_TRAITS = (
    # each peer on its own, no options
    MethodTraits("toy", "Toy"),
    # peers together, with a teacher; options from the mutual and kd sections
    MethodTraits(
        "toy_mutual",
        "ToyMutual",
        mutual=True,
        needs_teacher=True,
        sections=(Section("mutual", {"alpha": "alpha", "tau": "tau"}), Section("kd", {"lam": "lam"})),
    ),
)


def register_traits() -> None:
    """Add the toy methods' traits to :data:`babyteach.layout.TRAITS` (for good, in this process)."""
    for traits in TOY_TRAITS:
        layout.TRAITS[traits.name] = traits


#: Python code that registers the toy methods' traits before Snakemake starts, in its own process
#: (``run_snakemake(..., prelude=PRELUDE)``): this checkout's package, as common.smk imports it.
PRELUDE = (
    f"import sys; sys.path[:0] = [{str(REPO / 'src')!r}, {str(REPO / 'tests')!r}]; "
    "import toy_methods; toy_methods.register_traits()"
)

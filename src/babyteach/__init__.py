"""babyteach: knowledge distillation and weighted mutual learning on the BabyLM corpora.

The Snakemake workflow at the repository root drives everything; this package holds the
logic as small, typed, unit-tested functions (see ``docs/ARCHITECTURE.md``).
"""

__version__ = "0.1.0"

"""Rule search: one Bayesian architecture search per peer count → JSON (Table 3)."""

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.models import Architecture
    from babyteach.search import SearchSpace, search_architectures, write_search

    params = snakemake.params  # noqa: F821
    space = params.space
    write_search(
        snakemake.output[0],  # noqa: F821
        search_architectures(
            teacher=Architecture.from_mapping(dict(params.teacher), "model.teacher"),
            n_peers=int(snakemake.wildcards.peers),  # noqa: F821
            space=SearchSpace(layers=space["layers"], heads=space["heads"], hidden=space["hidden"]),
            vocab_size=int(params.vocab_size),
            block_size=int(params.block_size),
            init_points=int(params.init_points),
            n_iter=int(params.n_iter),
            seed=int(params.seed),
            tolerance=float(params.tolerance),
        ),
    )

"""Evaluation stage: zero-shot minimal pairs (BLiMP, supplement, EWoK) scored by pseudo-log-likelihood.

See :mod:`babyteach.evaluate.families` for the benchmark families, :mod:`babyteach.evaluate.variants`
for the scoring variants, :mod:`babyteach.evaluate.pairs` for reading and counting pairs,
:mod:`babyteach.evaluate.scoring` for the PLL engine and :mod:`babyteach.evaluate.zero_shot` for the
evaluation and its result JSON.
"""

"""Evaluation stage: zero-shot minimal pairs (BLiMP, supplement, EWoK) scored by pseudo-log-likelihood.

See :mod:`babyteach.evaluate.pairs` for the benchmark families, the PLL variants and the
result JSON.
"""

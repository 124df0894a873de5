"""Evaluation stage: zero-shot minimal pairs (BLiMP, supplement, EWoK) scored by pseudo-log-likelihood.

See :mod:`babyteach.evaluate.families` for the benchmark families and
:mod:`babyteach.evaluate.pairs` for the PLL variants and the result JSON.
"""

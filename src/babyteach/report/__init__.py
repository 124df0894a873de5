"""The paper's tables and figures, built only from the workflow's per-model result files.

:mod:`babyteach.report.runs` parses result paths and loads result files into tidy frames;
:mod:`babyteach.report.tables` writes the LaTeX/CSV tables (``write_table``, ``TABLES``);
:mod:`babyteach.report.figures` draws the figures.
"""

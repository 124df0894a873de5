"""The paper's tables and figures, built only from the workflow's per-model result files.

:mod:`babyteach.report.runs` parses result paths and loads result files into tidy frames.

Tables: :mod:`~babyteach.report.tables` (``write_table``, ``TABLES``: the entry a rule calls) dispatches to
the builders in :mod:`~babyteach.report.result_tables` (Tables 1, 2, 6-8) and
:mod:`~babyteach.report.setup_tables` (Tables 3-5, 9), which choose their runs with
:mod:`~babyteach.report.selection` and build a :mod:`~babyteach.report.table_model` table; ``write_table``
renders and writes it.

Figures: :mod:`~babyteach.report.figures` (``write_figure``, ``FIGURES``) dispatches to
:mod:`~babyteach.report.figure_ablations` (Figure 2, model size) and :mod:`~babyteach.report.figure_training`
(Figures 3, 4, loss curves), which share :mod:`~babyteach.report.figure_data` (inputs, averages) and
:mod:`~babyteach.report.figure_style` (look and writer).
"""

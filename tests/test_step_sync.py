"""The training step never waits for the device between log lines, and its shapes never change.

Every op the loop dispatches is recorded per step (a ``TorchDispatchMode`` entered from the
``on_step`` hook). On a GPU an op that reads a value back to the host (``item``, ``tolist``,
``nonzero``, boolean indexing) makes the CPU wait for every queued kernel; here, on the CPU,
the same ops are counted by name (and ``Tensor.tolist``/``numpy``, which read CPU memory
without dispatching an op), so the test holds for the code path a GPU runs. Steps that
log, evaluate or checkpoint may read back; every other step must not, for all six methods, and
two such steps must dispatch the same ops on the same shapes (what CUDA graphs and
``torch.compile`` need, and what a data-dependent number of masked positions breaks).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from train_helpers import BLOCK, SMALL, TINY, config, parameters_of, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

aten = torch.ops.aten
#: Ops that return a data-dependent value or shape to the host: a device sync on CUDA.
HOST_READS = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten._unique2.default,
    aten.unique_consecutive.default,
    aten.unique_dim.default,
    aten.repeat_interleave.Tensor,
}


def _reads_back(func, args) -> bool:
    if func in HOST_READS:
        return True
    if func in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default):  # boolean-mask indexing
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None)
    return False


class StepRecorder(TorchDispatchMode):
    """Per step: the host reads, and the (op, input shapes) sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.current: list[tuple[str, tuple]] = []
        self.reads: list[str] = []
        self.steps: dict[int, tuple[list, list[str]]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        shapes = tuple(
            tuple(a.shape) for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)
        )
        self.current.append((str(func), shapes))
        if _reads_back(func, args):
            self.reads.append(str(func))
        return func(*args, **kwargs)

    def wrap_reads(self, monkeypatch) -> None:
        """Count ``tolist``/``numpy`` too: on CPU tensors they read memory without dispatching."""
        for name in ("tolist", "numpy"):
            original = getattr(torch.Tensor, name)

            def reading(tensor, *args, _original=original, _name=name, **kwargs):
                if torch._C._get_dispatch_mode(torch._C._TorchDispatchModeKey.PROXY) is None and self.active:
                    self.reads.append(f"Tensor.{_name}")
                return _original(tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, reading)

    @property
    def active(self) -> bool:
        return any(mode is self for mode in torch.utils._python_dispatch._get_current_dispatch_mode_stack())

    def hook(self, step, models, losses) -> None:
        if step == 1:  # from here on every op of the loop is recorded, step by step
            self.__enter__()
        else:
            self.steps[step] = (self.current, self.reads)
        self.current, self.reads = [], []


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("teacher")
    run(data, tmp, "baseline", {"teacher": SMALL}, config(token_budget=2 * 8 * BLOCK))
    return tmp / "run" / "out" / "teacher"


METHODS = {  # method → options; the mutual methods with an outer step every 2 steps
    "baseline": {},
    "kd": {},
    "sd": {},
    "dml": {},
    "dwml": {"weight_update_every": 2},
    "kd_dwml": {"weight_update_every": 2},
}


@pytest.mark.parametrize("method", METHODS)
def test_steps_between_log_lines_never_read_back_and_keep_their_shapes(data, teacher, tmp_path, monkeypatch, method):
    recorder = StepRecorder()
    recorder.wrap_reads(monkeypatch)
    cfg = config(token_budget=8 * 2 * 8 * BLOCK, grad_accum=2, log_every=4, checkpoint_every=100)
    students = {"peer-1": TINY, "peer-2": SMALL} if method != "baseline" else {"teacher": TINY}
    try:
        run(
            data,
            tmp_path,
            method,
            students,
            cfg,
            teacher_dir=teacher if "kd" in method else None,
            method_options=METHODS[method],
            on_step=recorder.hook,
        )
    finally:
        recorder.__exit__(None, None, None)
    quiet = [2, 3, 5, 6, 7]  # steps 4 and 8 log (8 also checkpoints)
    assert {step: reads for step, (_, reads) in recorder.steps.items() if step in quiet} == {s: [] for s in quiet}
    assert recorder.steps[4][1], "a log step reads the losses back"
    ops = {step: recorder.steps[step][0] for step in quiet}
    # steps of the same kind dispatch the same ops on the same shapes (DWML: outer steps at 2 and 6)
    kinds = [[3, 5, 7], [2, 6]] if METHODS[method] else [quiet]
    for same in kinds:
        for s in same[1:]:
            assert ops[s] == ops[same[0]], [op for op in ops[s] if op not in ops[same[0]]]


@pytest.mark.parametrize("method", ["baseline", "sd", "kd_dwml"])
def test_compiled_step_has_no_graph_break_and_trains_as_the_eager_step(data, teacher, tmp_path, monkeypatch, method):
    # training.compile through the real loop: fullgraph=True turns any graph break into an error. The
    # "eager" backend runs the captured graph op by op (no C++ toolchain needed), so the weights must
    # equal the uncompiled run's; on a GPU the default backend then fuses that same graph.
    compile_calls = []
    original = torch.compile

    def compile_eagerly(fn, **kwargs):
        compile_calls.append(kwargs)
        return original(fn, **kwargs, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    torch._dynamo.reset()
    students = {"peer-1": TINY, "peer-2": SMALL}
    options = {"weight_update_every": 2} if method == "kd_dwml" else {}
    kwargs = dict(teacher_dir=teacher if "kd" in method else None, method_options=options)
    cfg = config(token_budget=4 * 8 * BLOCK, dropout=0.1)
    eager = run(data, tmp_path, method, students, cfg, tag="eager", **kwargs)
    compiled = run(
        data,
        tmp_path,
        method,
        students,
        config(token_budget=4 * 8 * BLOCK, dropout=0.1, compile=True),
        tag="compiled",
        **kwargs,
    )
    assert compile_calls == [{"fullgraph": True}]
    for name in students:
        assert compiled["students"][name]["final_dev_loss"] == pytest.approx(
            eager["students"][name]["final_dev_loss"], rel=1e-6
        )
        a, b = parameters_of(tmp_path / "eager" / "out", name), parameters_of(tmp_path / "compiled" / "out", name)
        assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a), name

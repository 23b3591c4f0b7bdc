"""The fast generation path: a model's cached step compiled (numba) over a chunk of tokens, sampling included.

`engine.generate(..., backend="auto")` uses it whenever `why_not(model)` is None and falls back to the eager
`step` loop otherwise.  Same seed, same ids as the eager path: both draw the same `RandomStream` rows and
invert the same float64 CDF (`sample_row` in engine/fast/kernel.py); the logits agree with torch's to about 1e-6.

Pieces: program.py (the op list a family's step is written in), lower_<family>.py (one per family),
lowering.py (registry, per-model cache, and the guard: each fast loop declares the config fields it handles or
ignores, and `why_not` refuses a model that sets any other field), kernel.py (the compiled loop and sampler),
runner.py (state glue); SampleRNN (GRU tiers) has its own loop in kernel.py and its runner in samplernn_runner.py.
"""
from __future__ import annotations

import threading

from .lowering import Lowered, Unsupported, lowered, register_lowering
from .lowering import why_not as _why_not_model
from . import lower_bytenet, lower_hierarchical, lower_wavenet  # noqa: F401  (each registers its family)
from . import samplernn_runner

try:
    import numba  # noqa: F401
    NUMBA_ERROR: str | None = None
except ImportError as exc:  # the eager path still works without it
    NUMBA_ERROR = f"numba is not available ({exc})"


_KERNEL: dict[str, str | None] = {}  # "error": None once the kernel ran, else why it could not
_LOCK = threading.Lock()


def why_not(model) -> str | None:
    """None when the fast path serves `model`, else a one-line reason."""
    if NUMBA_ERROR:
        return NUMBA_ERROR
    if samplernn_runner.serves(model):  # SampleRNN has its own compiled loop (engine/fast/samplernn_runner.py)
        return samplernn_runner.why_not(model)
    return _why_not_model(model) or _kernel_error()


def FastRunner(model, *args, **kwargs):  # noqa: N802  (imports numba lazily)
    if samplernn_runner.serves(model):
        return samplernn_runner.SampleRNNRunner(model, *args, **kwargs)
    from .runner import FastRunner as _Runner
    return _Runner(model, *args, **kwargs)


def warmup() -> bool:
    """Compile (or load from numba's on-disk cache) both compiled loops now, the op-list kernel and the SampleRNN
    loop, e.g. in a background thread at app start, so the first generation does not wait for them (a cold
    compile takes several CPU-seconds).  False when the fast path is unavailable (no numba, or a loop does not
    compile on this machine)."""
    from . import samplernn_runner
    kernel_ok = _kernel_error() is None
    return samplernn_runner._kernel_error() is None and kernel_ok


def _kernel_error() -> str | None:
    """Compile and run the kernel once per process on a tiny model; any failure turns the fast path off (the
    eager path serves everything) instead of failing a generation."""
    if NUMBA_ERROR:
        return NUMBA_ERROR
    with _LOCK:
        if "error" not in _KERNEL:
            try:
                _run_tiny()
                _KERNEL["error"] = None
            except Exception as exc:  # noqa: BLE001  (whatever broke, eager generation still works)
                _KERNEL["error"] = f"the fast kernel does not run here ({type(exc).__name__}: {exc})"
    return _KERNEL["error"]


def _run_tiny() -> None:
    import torch

    from ..models.hierarchical import Hierarchical, HierarchicalConfig
    from ..sampling import RandomStream, SamplingConfig
    with torch.inference_mode(False):
        model = Hierarchical(HierarchicalConfig(vocab_size=16, n_embd=2, levels=1, widths=[2], start_id=0)).eval()
    with torch.inference_mode():
        state = model.init_state(1)
        logits, state = model.prime(torch.zeros(1, 1, dtype=torch.long), state)
        FastRunner(model, state, 1, SamplingConfig()).run(2, RandomStream(1, 0).take(2), logits=logits)


__all__ = ["why_not", "warmup", "FastRunner", "Lowered", "Unsupported", "lowered", "register_lowering"]

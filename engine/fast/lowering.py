"""Which models the fast path serves, and their programs cached per model until a weight changes.

A family opts in with `register_lowering(ModelClass, fn, handles=..., ignores=...)`, where `fn(model) -> Lowered`
writes the family's `step` as a `Program` (engine/fast/program.py) and says where its state keeps the convolution
queues, the ring clock and any per-row constants.  Families whose state is `queues: list[Tensor]` plus `t: int`
(WaveNet, ByteNet's decoder, the hierarchical model) need only the program.

The guard: a lowering restates the family's `step` by hand, so it also declares every field of the family's config
it has read (`handles`) or knows not to matter for the cached step (`ignores`, field -> one-word reason).
`why_not` refuses a model whose config sets any other field to a non-default value, so a field added to a config
without touching its lowering sends those models to the eager path instead of silently generating as a different
model (tests/engine/test_fast_guard.py checks that the declarations cover exactly each config's fields).
"""
from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .program import Program


class Unsupported(Exception):
    """This model (or this configuration of it) has no fast program; the eager path serves it."""


def _default_queues(state) -> list[torch.Tensor]:
    return state.queues


def _default_set_queue(state, i: int, queue: torch.Tensor) -> None:
    state.queues[i] = queue


def _no_constants(state) -> dict[str, torch.Tensor]:
    return {}


@dataclass
class StepTable:
    """Per-step constants as a blend of two rows of a small table: before the step at clock t0 + i, the
    program's per-step region becomes lerp(values[b, left[b, i]], values[b, left[b, i] + 1], weight[b, i]).
    Local conditioning's per-sample biases are exactly this (frame-rate biases, interpolated), so a chunk hands
    over F' frame rows instead of n sample rows."""
    values: torch.Tensor  # [B, F', width] float32
    left: torch.Tensor  # [B, n] int64, 0 <= left <= F' - 2
    weight: torch.Tensor  # [B, n] float32 in [0, 1]


def _no_step_constants(state, t0: int, n: int) -> None:
    return None


def _get_t(state) -> int:
    return state.t


def _set_t(state, t: int) -> None:
    state.t = t


@dataclass
class Lowered:
    program: Program
    queues: Callable[[Any], list[torch.Tensor]] = field(default=_default_queues)
    set_queue: Callable[[Any, int, torch.Tensor], None] = field(default=_default_set_queue)
    constants: Callable[[Any], dict[str, torch.Tensor]] = field(default=_no_constants)  # name -> [B, n]
    get_t: Callable[[Any], int] = field(default=_get_t)
    set_t: Callable[[Any, int], None] = field(default=_set_t)
    step_constants: Callable[[Any, int, int], StepTable | None] = field(default=_no_step_constants)
    # (state, t0, n) -> the per-step region's values at clock t0 .. t0+n-1 (or None)


@dataclass(frozen=True)
class Fields:
    """The config fields a fast loop accounts for: read by it (`handles`) or irrelevant to the cached step
    (`ignores`: field -> a word on why, e.g. "training", "metadata")."""

    handles: frozenset[str]
    ignores: Mapping[str, str]

    @property
    def declared(self) -> frozenset[str]:
        return self.handles | frozenset(self.ignores)


_LOWERINGS: dict[type, Callable[[Any], Lowered]] = {}
_FIELDS: dict[type, Fields] = {}  # every model class with a fast loop: the op-list lowerings and SampleRNN's runner
_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, Lowered]]" = weakref.WeakKeyDictionary()


def declare_fields(model_cls: type, handles: Iterable[str], ignores: Mapping[str, str]) -> None:
    """Record which config fields the fast loop for `model_cls` accounts for (see the module docstring)."""
    handles = frozenset(handles)
    both = handles & set(ignores)
    if both:
        raise ValueError(f"{model_cls.__name__}: fields both handled and ignored: {sorted(both)}")
    _FIELDS[model_cls] = Fields(handles, dict(ignores))


def register_lowering(model_cls: type, fn: Callable[[Any], Lowered], *, handles: Iterable[str],
                      ignores: Mapping[str, str]) -> None:
    declare_fields(model_cls, handles, ignores)
    _LOWERINGS[model_cls] = fn


def declared_fields() -> dict[type, Fields]:
    """Model class -> the config fields its fast loop declares (for tests and docs)."""
    return dict(_FIELDS)


_NO_DEFAULT = object()


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _NO_DEFAULT


def config_reason(model: Any) -> str | None:
    """Why the fast loop must not serve `model` because of its config: a field it does not declare holds a
    value other than the field's default (a field without a default counts as set).  None when all is declared."""
    fields = _FIELDS.get(type(model))
    if fields is None:
        return f"no fast program for {type(model).__name__}"
    cfg = getattr(model, "config", None)
    if cfg is None or not dataclasses.is_dataclass(cfg):
        return f"the fast path reads a dataclass config; {type(model).__name__} has {type(cfg).__name__}"
    for f in dataclasses.fields(cfg):
        if f.name in fields.declared:
            continue
        value = getattr(cfg, f.name)
        default = _default(f)
        if default is _NO_DEFAULT or value != default:
            return (f"the fast program for {type(model).__name__} does not handle the config field "
                    f"{f.name}={value!r} (engine/fast: not declared by its lowering)")
    return None


def np32(t: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a parameter (detached; the program owns its own copy)."""
    return t.detach().to("cpu", torch.float32).numpy().copy()


def _version(t: torch.Tensor):
    """torch's in-place version counter; inference tensors have none, so fall back to a checksum."""
    try:
        return t._version
    except RuntimeError:
        return float(t.detach().double().sum()), float(t.detach().double().abs().sum())


def _weights_key(model: torch.nn.Module) -> tuple:
    """Changes whenever any parameter or buffer is replaced or modified in place."""
    return tuple((name, t.data_ptr(), _version(t), tuple(t.shape), t.dtype)
                 for name, t in list(model.named_parameters()) + list(model.named_buffers()))


def why_not(model: torch.nn.Module) -> str | None:
    """None when the fast path can serve `model`, else the reason it cannot."""
    fn = _LOWERINGS.get(type(model))
    if fn is None:
        return f"no fast program for {type(model).__name__}"
    return config_reason(model) or weights_reason(model)


def weights_reason(model: torch.nn.Module) -> str | None:
    """Why the compiled loops cannot read this model's weights (not on the CPU, not float32), or None."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.device.type != "cpu":
            return "the fast path runs on the CPU; the model is on " + t.device.type
        if t.is_floating_point() and t.dtype != torch.float32:
            return f"the fast path computes in float32; the model has {t.dtype} weights"
    return None


def lowered(model: torch.nn.Module) -> Lowered:
    """The model's program, rebuilt only when its weights change; raises Unsupported when it has none."""
    reason = why_not(model)
    if reason is not None:
        raise Unsupported(reason)
    key = _weights_key(model)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        result = _LOWERINGS[type(model)](model)
    _CACHE[model] = (key, result)
    return result

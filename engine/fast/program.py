"""A model's cached step written as a flat program of small ops over one float32 arena.

The fast path does not know any family: a family's *lowering* (engine/fast/lower_*.py) translates its `step`
into this op list once per model, with the weights copied into one contiguous float32 parameter array in the
layout the kernel reads fastest (every weight matrix transposed to [in, out], so the inner loop of a
matrix-vector product runs over contiguous outputs and vectorizes without reordering any sum).  The numba
kernel (engine/fast/kernel.py) then interprets the op list per token; the dispatch costs a few nanoseconds per
op, the arithmetic is the same as a hand-written loop.

Activations live in an arena row per batch row (offsets in floats); convolution queues live in a packed queue
row per batch row, time-major (slot s of queue j holds its `channels` values contiguously), which the runner
exposes back to the model as strided views so the eager `step`/`prime` and the fast loop share one state.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Opcodes.  Arguments (after the opcode) are arena offsets, parameter offsets (-1 = absent) and sizes.
EMBED = 0  # dst, table, width: dst = table[token]
CONV = 1  # dst, src, w, b, cin, cout, k, dilation, q_off, q_len, scratch: causal dilated conv step + queue write
LINEAR = 2  # dst, src, w, b, nin, nout: dst = W src + b
ADD = 3  # dst, src, n: dst += src
MUL = 4  # dst, src, n: dst *= src
SCALE = 5  # dst, n, p: dst *= params[p]
AFFINE = 6  # dst, src, n, scale, shift: dst = src * scale + shift (per channel)
RELU = 7  # dst, src, n
TANH = 8  # dst, src, n
SIGMOID = 9  # dst, src, n
GATE = 10  # dst, src, half: dst = tanh(src[:half]) * sigmoid(src[half:])
LAYERNORM = 11  # dst, src, n, w, b, eps_p: over the n channels
COPY = 12  # dst, src, n
N_ARGS = 12
ALIGN = 16  # floats: 64-byte alignment of every buffer and weight block


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Program:
    """Everything the kernel needs for one model; see the module docstring."""

    ops: np.ndarray  # int64 [n_ops, 1 + N_ARGS]
    params: np.ndarray  # float32 [n_params]
    arena_size: int
    logits: int  # arena offset of the V logits the last op leaves
    vocab_size: int
    queue_shapes: list[tuple[int, int]]  # (channels, length) per queue, in the family's state order
    queue_offsets: list[int]  # offset of each queue in the packed queue row
    queue_size: int  # floats per packed queue row
    constants: dict[str, int] = field(default_factory=dict)  # named per-row constant regions (e.g. cond biases)
    step_region: tuple[int, int] = (0, 0)  # (offset, width) of the region refreshed before every step, or width 0


class ProgramBuilder:
    """Collects buffers, weights and ops; `build()` freezes them into a `Program`."""

    def __init__(self) -> None:
        self._ops: list[list[int]] = []
        self._params: list[np.ndarray] = []
        self._n_params = 0
        self._arena = 0
        self._queues: list[tuple[int, int]] = []
        self._queue_offsets: list[int] = []
        self._queue_size = 0
        self.constants: dict[str, int] = {}
        self.step_region = (0, 0)

    # ---- storage ----------------------------------------------------------------------------------------
    def buffer(self, n: int) -> int:
        """A fresh arena region of n floats; returns its offset."""
        off = self._arena
        self._arena += _aligned(max(n, 1))
        return off

    def constant(self, name: str, n: int) -> int:
        """An arena region the runner fills per batch row before each chunk (e.g. a conditioning bias)."""
        off = self.buffer(n)
        self.constants[name] = off
        return off

    def step_constants(self, n: int) -> int:
        """The arena region the kernel refreshes before every step from a per-step table the runner computes for
        each chunk (`Lowered.step_constants`: e.g. local conditioning's per-sample gate biases); one per program."""
        if self.step_region[1]:
            raise ValueError("a program has one per-step constant region")
        off = self.buffer(n)
        self.step_region = (off, n)
        return off

    def param(self, values) -> int:
        """Append a float32 array (flattened in C order) to the parameters; returns its offset."""
        arr = np.ascontiguousarray(np.asarray(values, dtype=np.float32)).reshape(-1)
        off = self._n_params
        pad = _aligned(arr.size) - arr.size
        self._params.append(arr)
        if pad:
            self._params.append(np.zeros(pad, np.float32))
        self._n_params += arr.size + pad
        return off

    def queue(self, channels: int, length: int) -> int:
        """Declare the next queue of the family's state (same order); returns its offset in the queue row."""
        off = self._queue_size
        self._queues.append((channels, length))
        self._queue_offsets.append(off)
        self._queue_size += _aligned(channels * length) if length else 0
        return off

    def op(self, code: int, *args: int) -> None:
        if len(args) > N_ARGS:
            raise ValueError("too many op arguments")
        self._ops.append([code, *[int(a) for a in args], *[0] * (N_ARGS - len(args))])

    # ---- layers expressed in ops --------------------------------------------------------------------------
    def embed(self, dst: int, table) -> None:
        """dst = table[token]; table [V, width]."""
        table = np.asarray(table, dtype=np.float32)
        self.op(EMBED, dst, self.param(table), table.shape[1])

    def linear(self, dst: int, src: int, weight, bias=None) -> None:
        """dst = weight @ src + bias; weight [out, in] as torch stores it (transposed here for the kernel)."""
        w = np.asarray(weight, dtype=np.float32)
        b = -1 if bias is None else self.param(bias)
        self.op(LINEAR, dst, src, self.param(w.T), b, w.shape[1], w.shape[0])

    def conv(self, dst: int, src: int, weight, bias, dilation: int) -> int:
        """Causal dilated conv step on the next queue; weight [out, in, k] as torch stores it.

        Declares the queue itself (length (k-1)*dilation) and returns its index in the state's queue list.
        """
        w = np.asarray(weight, dtype=np.float32)
        cout, cin, k = w.shape
        q_len = (k - 1) * dilation
        index = len(self._queues)
        q_off = self.queue(cin, q_len)
        b = -1 if bias is None else self.param(bias)
        taps = self.buffer(k * cin)  # the k inputs gathered contiguously, oldest first
        self.op(CONV, dst, src, self.param(w.transpose(2, 1, 0)), b, cin, cout, k, dilation, q_off, q_len, taps)
        return index

    def build(self, logits: int, vocab_size: int) -> Program:
        ops = np.array(self._ops, dtype=np.int64).reshape(-1, 1 + N_ARGS)
        params = np.concatenate(self._params) if self._params else np.zeros(ALIGN, np.float32)
        return Program(np.ascontiguousarray(ops), np.ascontiguousarray(params), max(self._arena, ALIGN), logits,
                       vocab_size, list(self._queues), list(self._queue_offsets), max(self._queue_size, ALIGN),
                       dict(self.constants), self.step_region)

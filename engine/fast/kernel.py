"""The compiled loop: step every op of a `Program`, sample, feed the id back, for a chunk of tokens.

One call handles a block of batch rows together (each row has its own arena row, queue row and uniforms; a
matrix-vector product loads each weight block once for all of them), and the runner can hand disjoint row
blocks to several threads (`nogil`).  Arithmetic is float32 in a fixed order,
no fast-math: a matrix-vector product accumulates `dst[o] += sum of 8 terms W[i, o] * x[i]` with o innermost,
which vectorizes over outputs without reassociating any sum.  Logits match torch to about 1e-6.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import program
from .program import (ADD, AFFINE, CONV, COPY, EMBED, GATE, LAYERNORM, LINEAR, MUL, RELU, SCALE, SIGMOID, TANH)

# numba's on-disk cache (cache=True) is invalidated only when *this* file changes, so everything compiled lives in
# this one file, and the opcode values it was compiled against are spelled out here: changing them in
# program.py without changing this file would silently run stale machine code.
_COMPILED_OPCODES = dict(EMBED=0, CONV=1, LINEAR=2, ADD=3, MUL=4, SCALE=5, AFFINE=6, RELU=7, TANH=8, SIGMOID=9,
                         GATE=10, LAYERNORM=11, COPY=12)
if any(getattr(program, name) != code for name, code in _COMPILED_OPCODES.items()):
    raise ImportError("engine/fast/program.py opcodes changed: update _COMPILED_OPCODES in engine/fast/kernel.py")

_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
# tanh as Eigen's rational approximation (odd degree-13 over even degree-6 polynomial on [-7.9, 7.9]): only
# multiplies, adds, a divide and a clamp, so the gate loops vectorize; max abs error 3.4e-7 against float64 tanh.
_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = (np.float32(4.89352455891786e-03), np.float32(6.37261928875436e-04),
                                       np.float32(1.48572235717979e-05), np.float32(5.12229709037114e-08),
                                       np.float32(-8.60467152213735e-11), np.float32(2.00018790482477e-13),
                                       np.float32(-2.76076847742355e-16))
_B0, _B2, _B4, _B6 = (np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03),
                      np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06))


@njit(cache=True, nogil=True, error_model="numpy")
def _tanh(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = ((((((_A13 * x2 + _A11) * x2 + _A9) * x2 + _A7) * x2 + _A5) * x2 + _A3) * x2 + _A1) * x
    q = ((_B6 * x2 + _B4) * x2 + _B2) * x2 + _B0
    return p / q


@njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid(x):
    return _HALF + _HALF * _tanh(_HALF * x)


@njit(cache=True, nogil=True, error_model="numpy")
def _matvec_rows(A, dst, src, P, w, b, nin, nout):
    """For every row a of A: a[dst:dst+nout] = b + sum_i W[i, :] * a[src+i] (W at P[w:], [nin, nout] row-major).

    Eight inputs per pass over the outputs; each block of eight weight rows is loaded once for all batch rows,
    so a batch shares the weight traffic.  The sum order is fixed and the same for every batch size."""
    for r in range(A.shape[0]):
        y = A[r, dst:dst + nout]
        if b >= 0:
            bias = P[b:b + nout]
            for o in range(nout):
                y[o] = bias[o]
        else:
            for o in range(nout):
                y[o] = _ZERO
    i = 0
    while i + 8 <= nin:
        base = w + i * nout
        r0 = P[base:base + nout]
        r1 = P[base + nout:base + 2 * nout]
        r2 = P[base + 2 * nout:base + 3 * nout]
        r3 = P[base + 3 * nout:base + 4 * nout]
        r4 = P[base + 4 * nout:base + 5 * nout]
        r5 = P[base + 5 * nout:base + 6 * nout]
        r6 = P[base + 6 * nout:base + 7 * nout]
        r7 = P[base + 7 * nout:base + 8 * nout]
        for r in range(A.shape[0]):
            a = A[r]
            y = a[dst:dst + nout]
            x = a[src + i:src + i + 8]
            x0, x1, x2, x3, x4, x5, x6, x7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
            for o in range(nout):
                y[o] += ((r0[o] * x0 + r1[o] * x1) + (r2[o] * x2 + r3[o] * x3)) + (
                    (r4[o] * x4 + r5[o] * x5) + (r6[o] * x6 + r7[o] * x7))
        i += 8
    while i < nin:
        row = P[w + i * nout:w + (i + 1) * nout]
        for r in range(A.shape[0]):
            y = A[r, dst:dst + nout]
            xi = A[r, src + i]
            for o in range(nout):
                y[o] += row[o] * xi
        i += 1


@njit(cache=True, nogil=True, error_model="numpy")
def step_rows(ops, P, A, Q, t, tokens):
    """One cached step of every row of A (arena rows) / Q (queue rows): tokens [rows] in, logits left in A."""
    nb = A.shape[0]
    for j in range(ops.shape[0]):
        code = ops[j, 0]
        if code == CONV:
            dst, src, w, b, cin, cout = ops[j, 1], ops[j, 2], ops[j, 3], ops[j, 4], ops[j, 5], ops[j, 6]
            k, dil, q_off, q_len, taps = ops[j, 7], ops[j, 8], ops[j, 9], ops[j, 10], ops[j, 11]
            for r in range(nb):  # gather the inputs at t - (k-1)d, ..., t - d, then x_t, contiguously
                a = A[r]
                q = Q[r]
                for m in range(k - 1):
                    slot = (t - (k - 1 - m) * dil) % q_len
                    tap = a[taps + m * cin:taps + (m + 1) * cin]
                    old = q[q_off + slot * cin:q_off + (slot + 1) * cin]
                    for i in range(cin):
                        tap[i] = old[i]
                tap = a[taps + (k - 1) * cin:taps + k * cin]
                x = a[src:src + cin]
                for i in range(cin):
                    tap[i] = x[i]
            _matvec_rows(A, dst, taps, P, w, b, k * cin, cout)
            if q_len > 0:
                slot = t % q_len
                for r in range(nb):
                    new = Q[r, q_off + slot * cin:q_off + (slot + 1) * cin]
                    x = A[r, src:src + cin]
                    for i in range(cin):
                        new[i] = x[i]
        elif code == LINEAR:
            _matvec_rows(A, ops[j, 1], ops[j, 2], P, ops[j, 3], ops[j, 4], ops[j, 5], ops[j, 6])
        else:
            for r in range(nb):
                _pointwise(ops[j], P, A[r], tokens[r])


@njit(cache=True, nogil=True, error_model="numpy")
def _pointwise(op, P, a, token):
    """Every op but CONV and LINEAR, on one arena row."""
    code = op[0]
    if code == GATE:
        dst, src, half = op[1], op[2], op[3]
        y = a[dst:dst + half]
        u = a[src:src + half]
        v = a[src + half:src + 2 * half]
        for i in range(half):
            y[i] = _tanh(u[i]) * _sigmoid(v[i])
    elif code == ADD:
        dst, src, n = op[1], op[2], op[3]
        y = a[dst:dst + n]
        x = a[src:src + n]
        for i in range(n):
            y[i] += x[i]
    elif code == MUL:
        dst, src, n = op[1], op[2], op[3]
        y = a[dst:dst + n]
        x = a[src:src + n]
        for i in range(n):
            y[i] *= x[i]
    elif code == SCALE:
        dst, n, p = op[1], op[2], op[3]
        s = P[p]
        y = a[dst:dst + n]
        for i in range(n):
            y[i] *= s
    elif code == AFFINE:
        dst, src, n, sc, sh = op[1], op[2], op[3], op[4], op[5]
        y = a[dst:dst + n]
        x = a[src:src + n]
        scale = P[sc:sc + n]
        shift = P[sh:sh + n]
        for i in range(n):
            y[i] = x[i] * scale[i] + shift[i]
    elif code == RELU:
        dst, src, n = op[1], op[2], op[3]
        y = a[dst:dst + n]
        x = a[src:src + n]
        for i in range(n):
            y[i] = max(x[i], _ZERO)
    elif code == TANH:
        dst, src, n = op[1], op[2], op[3]
        y = a[dst:dst + n]
        x = a[src:src + n]
        for i in range(n):
            y[i] = _tanh(x[i])
    elif code == SIGMOID:
        dst, src, n = op[1], op[2], op[3]
        y = a[dst:dst + n]
        x = a[src:src + n]
        for i in range(n):
            y[i] = _sigmoid(x[i])
    elif code == LAYERNORM:
        dst, src, n, w, b, e = op[1], op[2], op[3], op[4], op[5], op[6]
        x = a[src:src + n]
        y = a[dst:dst + n]
        mean = 0.0
        for i in range(n):
            mean += x[i]
        mean /= n
        var = 0.0
        for i in range(n):
            d = x[i] - mean
            var += d * d
        var /= n
        rstd = np.float32(1.0 / math.sqrt(var + P[e]))
        mu = np.float32(mean)
        for i in range(n):
            y[i] = (x[i] - mu) * rstd
        if w >= 0:
            for i in range(n):
                y[i] *= P[w + i]
        if b >= 0:
            for i in range(n):
                y[i] += P[b + i]
    elif code == COPY:
        dst, src, n = op[1], op[2], op[3]
        y = a[dst:dst + n]
        x = a[src:src + n]
        for i in range(n):
            y[i] = x[i]
    elif code == EMBED:
        dst, table, width = op[1], op[2], op[3]
        y = a[dst:dst + width]
        row = P[table + token * width:table + (token + 1) * width]
        for i in range(width):
            y[i] = row[i]


# ---- sampling: engine.sampling.sample for one row ----------------------------------------------------------
# `engine.sampling.sample` for one row, compiled: the same float64 inverse-CDF math, op for op.
# 
# temperature -> softmax -> top-k (keep every prob >= the k-th largest, ties included) -> top-p (keep ids whose
# mass strictly above them, in descending order with ties by lower id, is < top_p * total) -> cdf = running sum ->
# first id whose cdf exceeds u * cdf[-1], clipped to the last id with nonzero probability.  Temperature 0 is the
# argmax (the first maximum, as torch.argmax).  Given the same logits and uniform it returns the same id as the
# torch sampler; the only difference is the order of a few float64 sums (about 1e-16), which matters only if a
# uniform lands exactly on a bucket edge.


@njit(cache=True, nogil=True, error_model="numpy")
def sample_row(logits, temperature, top_k, top_p, u, probs, scratch):
    """logits: float32 [V]; probs, scratch: float64 [V] work space.  top_k 0 = off, top_p >= 1 = off."""
    v = logits.shape[0]
    if temperature == 0.0:
        best = 0
        for j in range(1, v):
            if logits[j] > logits[best]:
                best = j
        return best
    m = -np.inf
    for j in range(v):
        x = np.float64(logits[j]) / temperature
        probs[j] = x
        if x > m:
            m = x
    s = 0.0
    for j in range(v):
        e = math.exp(probs[j] - m)
        probs[j] = e
        s += e
    inv = 1.0 / s
    for j in range(v):
        probs[j] = probs[j] * inv
    if top_k > 0 and top_k < v:
        for j in range(v):
            scratch[j] = probs[j]
        scratch.sort()
        kth = scratch[v - top_k]
        for j in range(v):
            if not probs[j] >= kth:
                probs[j] = 0.0
    if top_p < 1.0:
        for j in range(v):
            scratch[j] = -probs[j]
        order = np.argsort(scratch, kind="mergesort")  # descending probs, ties by lower id (stable)
        total = 0.0
        for j in range(v):
            total += probs[order[j]]
        limit = top_p * total
        c = 0.0
        keep = np.empty(v, np.bool_)
        for j in range(v):
            p = probs[order[j]]
            c += p
            keep[j] = (c - p) < limit
        for j in range(v):
            if not keep[j]:
                probs[order[j]] = 0.0
    c = 0.0
    last = -1
    for j in range(v):
        c += probs[j]
        scratch[j] = c
        if probs[j] > 0.0:
            last = j
    target = u * scratch[v - 1]
    lo = 0  # first index with cdf > target (searchsorted right)
    hi = v
    while lo < hi:
        mid = (lo + hi) // 2
        if scratch[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    if last >= 0 and lo > last:
        lo = last
    if lo >= v:
        lo = v - 1
    return lo


@njit(cache=True, nogil=True, error_model="numpy")
def run_rows(ops, P, arena, Q, t0, last, first_step, U, temperature, top_k, top_p, logits, vocab, S, SL, SW, s_off,
             out):
    """n = U.shape[1] tokens for every row: token i first steps the model on the previous ids (except the very
    first token of a generation, whose logits the eager prime left in the arena), then samples row b with
    uniform U[b, i].  `last` holds the previous id per row and is updated; returns the clock after the chunk.
    Per-step constants (w = S.shape[2] > 0; see lowering.StepTable): before the step at clock t0 + i, arena
    offset s_off of row b gets lerp(S[b, SL[b, i]], S[b, SL[b, i] + 1], SW[b, i]), in torch.lerp's two-sided
    form (exact at weights 0 and 1)."""
    n = U.shape[1]
    width = S.shape[2]
    probs = np.empty(vocab, np.float64)
    scratch = np.empty(vocab, np.float64)
    t = t0
    for i in range(n):
        if i > 0 or first_step:
            if width > 0:
                for b in range(arena.shape[0]):
                    j = SL[b, t - t0]
                    wt = SW[b, t - t0]
                    lo = S[b, j]
                    hi = S[b, j + 1]
                    dst = arena[b, s_off:s_off + width]
                    if wt < _HALF:
                        for c in range(width):
                            dst[c] = lo[c] + wt * (hi[c] - lo[c])
                    else:
                        w1 = wt - _ONE
                        for c in range(width):
                            dst[c] = hi[c] + w1 * (hi[c] - lo[c])
            step_rows(ops, P, arena, Q, t, last)
            t += 1
        for b in range(arena.shape[0]):
            tok = sample_row(arena[b, logits:logits + vocab], temperature, top_k, top_p, U[b, i], probs, scratch)
            out[b, i] = tok
            last[b] = tok
    return t


# ---- SampleRNN (GRU tiers): its own loop, driven by three int64 tables that engine/fast/samplernn_runner.py builds.
# Both sides index them only through the column names below (numba compiles the names in as constants; they live in
# this file so that changing one invalidates the compiled cache).  "param" = offset in P, "arena" = offset in a row
# of A; the others are sizes or flags.
# T[k, T_*], frame tier k (top down):
T_F = 0  # frame size f
T_RATIO = 1  # r = f / the next tier's frame size (or f for the last frame tier)
T_OUT_DIM = 2  # channels of each upsampled conditioning vector
T_PROJ_W, T_PROJ_B = 3, 4  # param: frame -> dim input projection
T_UP_W, T_UP_B = 5, 6  # param: dim -> r * out_dim upsampling
T_FRAME = 7  # arena: the f dequantized samples of the frame
T_X = 8  # arena: the projected frame (+ conditioning), the first GRU layer's input
T_OUT = 9  # arena: the r conditioning vectors this tier hands down
T_COND_IN = 10  # arena: the parent tier's T_OUT (-1 for the top tier)
T_PARENT_F = 11  # the parent tier's frame size (0 for the top tier)
T_COLS = 12
# L[k, l, L_*], GRU layer l of tier k:
L_W_IH, L_B_IH, L_W_HH, L_B_HH = 0, 1, 2, 3  # param: weights [in, 3 dim] and biases, gates r, z, n
L_H = 4  # arena: the hidden state
L_GI, L_GH = 5, 6  # arena: input and hidden gate pre-activations, 3 dim each
L_INPUT = 7  # arena: the layer's input (T_X, or the previous layer's L_H)
L_COLS = 8
# M[M_*], the sample-level MLP and the sizes:
M_TABLE = 0  # param: [F, V, mlp] embedding rows folded into the input Linear
M_INP_B = 1  # param: the input Linear's bias
M_HID_W, M_HID_B = 2, 3  # param: hidden Linear
M_OUT_W, M_OUT_B = 4, 5  # param: output Linear
M_H0, M_H1 = 6, 7  # arena: the two hidden activations, mlp each
M_LOGITS = 8  # arena: the V logits
M_COND = 9  # arena: the last frame tier's T_OUT (F_last conditioning vectors of mlp)
M_F_LAST = 10  # F = the last frame tier's frame size (samples the MLP sees)
M_MLP = 11  # mlp width
M_V = 12  # vocabulary (quantization levels)
M_GC = 13  # arena: the global conditioning vector (dim)
M_HAS_GC = 14  # 1 when the model is conditioned, else 0
M_DIM = 15  # frame tiers' hidden size
M_HIST = 16  # length of the sample history H (the top frame size)
M_DEQUANT = 17  # param: id -> float sample, V values
M_COLS = 18


@njit(cache=True, nogil=True, error_model="numpy")
def _gru_update(a, h, gi, gh, dim):
    """torch's GRU cell pointwise part (gates r, z, n in that order): h = n + z * (h - n)."""
    for o in range(dim):
        r = _sigmoid(a[gi + o] + a[gh + o])
        z = _sigmoid(a[gi + dim + o] + a[gh + dim + o])
        n = _tanh(a[gi + 2 * dim + o] + r * a[gh + 2 * dim + o])
        a[h + o] = n + z * (a[h + o] - n)


@njit(cache=True, nogil=True, error_model="numpy")
def srnn_step(T, L, M, P, A, H, t, tokens):
    """`SampleRNN.step` for every row: shift `tokens` into the histories H, run each frame tier whose boundary
    this is (top down), then the sample-level MLP; logits left in A.  Returns the new clock."""
    nb = A.shape[0]
    hp, fl, mlp, v, dim = M[M_HIST], M[M_F_LAST], M[M_MLP], M[M_V], M[M_DIM]
    for r in range(nb):
        hr = H[r]
        for j in range(hp - 1):
            hr[j] = hr[j + 1]
        hr[hp - 1] = tokens[r]
    t += 1
    u = hp + t
    if u % fl == 0:
        for k in range(T.shape[0]):
            f = T[k, T_F]
            if u % f:
                continue
            fo, xo, dq = T[k, T_FRAME], T[k, T_X], M[M_DEQUANT]
            for r in range(nb):
                a = A[r]
                for j in range(f):
                    a[fo + j] = P[dq + H[r, hp - f + j]]
            _matvec_rows(A, xo, fo, P, T[k, T_PROJ_W], T[k, T_PROJ_B], f, dim)
            if k == 0:
                c = M[M_GC] if M[M_HAS_GC] else -1
            else:
                c = T[k, T_COND_IN] + ((u % T[k, T_PARENT_F]) // f) * dim
            if c >= 0:
                for r in range(nb):
                    a = A[r]
                    for o in range(dim):
                        a[xo + o] += a[c + o]
            nl = L.shape[1]
            for l in range(nl):
                _matvec_rows(A, L[k, l, L_GI], L[k, l, L_INPUT], P, L[k, l, L_W_IH], L[k, l, L_B_IH], dim, 3 * dim)
                _matvec_rows(A, L[k, l, L_GH], L[k, l, L_H], P, L[k, l, L_W_HH], L[k, l, L_B_HH], dim, 3 * dim)
                for r in range(nb):
                    _gru_update(A[r], L[k, l, L_H], L[k, l, L_GI], L[k, l, L_GH], dim)
            _matvec_rows(A, T[k, T_OUT], L[k, nl - 1, L_H], P, T[k, T_UP_W], T[k, T_UP_B], dim,
                         T[k, T_RATIO] * T[k, T_OUT_DIM])
    h0, h1 = M[M_H0], M[M_H1]
    ci = M[M_COND] + (u % fl) * mlp
    bias = P[M[M_INP_B]:M[M_INP_B] + mlp]
    for r in range(nb):
        a = A[r]
        y = a[h0:h0 + mlp]
        for o in range(mlp):
            y[o] = bias[o]
        for j in range(fl):
            base = M[M_TABLE] + (j * v + H[r, hp - fl + j]) * mlp
            row = P[base:base + mlp]
            for o in range(mlp):
                y[o] += row[o]
        cv = a[ci:ci + mlp]
        for o in range(mlp):
            y[o] = max(y[o] + cv[o], _ZERO)
    _matvec_rows(A, h1, h0, P, M[M_HID_W], M[M_HID_B], mlp, mlp)
    for r in range(nb):
        y = A[r, h1:h1 + mlp]
        for o in range(mlp):
            y[o] = max(y[o], _ZERO)
    _matvec_rows(A, M[M_LOGITS], h1, P, M[M_OUT_W], M[M_OUT_B], mlp, v)
    return t


@njit(cache=True, nogil=True, error_model="numpy")
def srnn_run(T, L, M, P, A, H, t0, last, first_step, U, temperature, top_k, top_p, out):
    """`run_rows` for SampleRNN: n = U.shape[1] ids per row, stepping on the previous id before each but the
    first of a generation (whose logits the eager prime left in A)."""
    n = U.shape[1]
    v, lg = M[M_V], M[M_LOGITS]
    probs = np.empty(v, np.float64)
    scratch = np.empty(v, np.float64)
    t = t0
    for i in range(n):
        if i > 0 or first_step:
            t = srnn_step(T, L, M, P, A, H, t, last)
        for b in range(A.shape[0]):
            tok = sample_row(A[b, lg:lg + v], temperature, top_k, top_p, U[b, i], probs, scratch)
            out[b, i] = tok
            last[b] = tok
    return t

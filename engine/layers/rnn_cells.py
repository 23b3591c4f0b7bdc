"""Recurrent cells for the `rnn` and `seq2seq` families: LSTM, GRU, the three JZS mutants, IRNN.

JZS1-3 are the MUT1-3 architectures found by Jozefowicz, Zaremba & Sutskever (2015), "An Empirical
Exploration of Recurrent Network Architectures"; IRNN is the ReLU RNN with an identity recurrent matrix
(Le, Jaitly & Hinton 2015).  Names follow the equations (W_xz: input to update gate, W_hr: hidden to reset
gate, ...); input-side linears carry the biases.

Each cell splits its work in two so a layer can run over a whole sequence fast:
`precompute(x)` applies every input-side linear to all time steps at once ([B, T, I] -> tuple of [B, T, *]),
and `recur(pre_t, state)` does the recurrent part of one step.  `step` and `forward` run the same two calls,
which is why stepping reproduces the parallel pass.  A state is a tuple whose first item is h [B, H].
`step(x_t, state)` is one decoding step: the two on a sequence of one.
"""
from __future__ import annotations

import torch
from torch import nn

CELLS = ("lstm", "gru", "jzs1", "jzs2", "jzs3", "irnn")

State = tuple[torch.Tensor, ...]
Pre = tuple[torch.Tensor, ...]


class Cell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size

    def init_state(self, batch_size: int, device=None) -> State:
        device = device if device is not None else next(self.parameters()).device
        return (torch.zeros(batch_size, self.hidden_size, device=device),)

    def precompute(self, x: torch.Tensor) -> Pre:  # [B, T, I]
        raise NotImplementedError

    def recur(self, pre: Pre, state: State) -> State:  # one step: pre items [B, *]
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: State) -> State:
        """One step from the input x [B, I]: precompute and recur on a sequence of one."""
        return self.recur(tuple(p[:, 0] for p in self.precompute(x.unsqueeze(1))), state)

    def _raw_input(self) -> nn.Module:
        """JZS1/JZS2 use the raw input x inside a hidden-size sum, so x is projected when sizes differ."""
        if self.input_size == self.hidden_size:
            return nn.Identity()
        return nn.Linear(self.input_size, self.hidden_size, bias=False)


class LSTMCell(Cell):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.W_x = nn.Linear(input_size, 4 * hidden_size)  # input, forget, cell, output
        self.W_h = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        with torch.no_grad():
            self.W_x.bias[hidden_size:2 * hidden_size].fill_(1.0)  # forget-gate bias 1 (Jozefowicz et al.)

    def init_state(self, batch_size: int, device=None) -> State:
        h, = super().init_state(batch_size, device)
        return h, torch.zeros_like(h)

    def precompute(self, x):
        return (self.W_x(x),)

    def recur(self, pre, state):
        h, c = state
        i, f, g, o = (pre[0] + self.W_h(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRUCell(Cell):
    """z = σ(W_xz x + W_hz h), r = σ(W_xr x + W_hr h), h' = tanh(W_xh x + W_hh(r⊙h))⊙z + h⊙(1−z)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.W_xz, self.W_xr, self.W_xh = (nn.Linear(input_size, hidden_size) for _ in range(3))
        self.W_hz, self.W_hr, self.W_hh = (nn.Linear(hidden_size, hidden_size, bias=False) for _ in range(3))

    def precompute(self, x):
        return self.W_xz(x), self.W_xr(x), self.W_xh(x)

    def recur(self, pre, state):
        xz, xr, xh = pre
        h = state[0]
        z = torch.sigmoid(xz + self.W_hz(h))
        r = torch.sigmoid(xr + self.W_hr(h))
        return (torch.tanh(xh + self.W_hh(r * h)) * z + h * (1 - z),)


class JZS1Cell(Cell):
    """MUT1: z = σ(W_xz x + b_z), r = σ(W_xr x + W_hr h + b_r), h' = tanh(W_hh(r⊙h) + tanh(x) + b_h)⊙z + h⊙(1−z)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.W_xz, self.W_xr = nn.Linear(input_size, hidden_size), nn.Linear(input_size, hidden_size)
        self.x_proj = self._raw_input()
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hr = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_hh = nn.Linear(hidden_size, hidden_size, bias=False)

    def precompute(self, x):
        return self.W_xz(x), self.W_xr(x), torch.tanh(self.x_proj(x)) + self.b_h

    def recur(self, pre, state):
        xz, xr, xh = pre
        h = state[0]
        z = torch.sigmoid(xz)
        r = torch.sigmoid(xr + self.W_hr(h))
        return (torch.tanh(self.W_hh(r * h) + xh) * z + h * (1 - z),)


class JZS2Cell(Cell):
    """MUT2: z = σ(W_xz x + W_hz h + b_z), r = σ(x + W_hr h + b_r), h' = tanh(W_hh(r⊙h) + W_xh x + b_h)⊙z + h⊙(1−z)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.W_xz, self.W_xh = nn.Linear(input_size, hidden_size), nn.Linear(input_size, hidden_size)
        self.x_proj = self._raw_input()
        self.b_r = nn.Parameter(torch.zeros(hidden_size))
        self.W_hz, self.W_hr, self.W_hh = (nn.Linear(hidden_size, hidden_size, bias=False) for _ in range(3))

    def precompute(self, x):
        return self.W_xz(x), self.x_proj(x) + self.b_r, self.W_xh(x)

    def recur(self, pre, state):
        xz, xr, xh = pre
        h = state[0]
        z = torch.sigmoid(xz + self.W_hz(h))
        r = torch.sigmoid(xr + self.W_hr(h))
        return (torch.tanh(self.W_hh(r * h) + xh) * z + h * (1 - z),)


class JZS3Cell(GRUCell):
    """MUT3: z = σ(W_xz x + W_hz tanh(h) + b_z), r = σ(W_xr x + W_hr h + b_r),
    h' = tanh(W_hh(r⊙h) + W_xh x + b_h)⊙z + h⊙(1−z).  The GRU's weights; only the update gate differs."""

    def recur(self, pre, state):
        xz, xr, xh = pre
        h = state[0]
        z = torch.sigmoid(xz + self.W_hz(torch.tanh(h)))
        r = torch.sigmoid(xr + self.W_hr(h))
        return (torch.tanh(self.W_hh(r * h) + xh) * z + h * (1 - z),)


class IRNNCell(Cell):
    """h' = ReLU(W_xh x + W_hh h + b) with W_hh initialised to scale * I and b = 0 (Le et al. 2015)."""

    def __init__(self, input_size: int, hidden_size: int, scale: float = 1.0):
        super().__init__(input_size, hidden_size)
        self.W_xh = nn.Linear(input_size, hidden_size)
        self.W_hh = nn.Linear(hidden_size, hidden_size, bias=False)
        with torch.no_grad():
            self.W_xh.bias.zero_()
            self.W_hh.weight.copy_(scale * torch.eye(hidden_size))

    def precompute(self, x):
        return (self.W_xh(x),)

    def recur(self, pre, state):
        return (torch.relu(pre[0] + self.W_hh(state[0])),)


def make_cell(kind: str, input_size: int, hidden_size: int, irnn_scale: float = 1.0) -> Cell:
    classes = {"lstm": LSTMCell, "gru": GRUCell, "jzs1": JZS1Cell, "jzs2": JZS2Cell, "jzs3": JZS3Cell}
    if kind == "irnn":
        return IRNNCell(input_size, hidden_size, irnn_scale)
    if kind not in classes:
        raise ValueError(f"cell must be one of {CELLS}, got {kind!r}")
    return classes[kind](input_size, hidden_size)

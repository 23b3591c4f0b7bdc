"""A stack of recurrent cells (any of engine/layers/rnn_cells.py) and hidden-state averaging.

Shared by the RNN language model and the seq2seq family's RNN encoder and decoder.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .rnn_cells import State, make_cell


def layer_devices(devices: list[str] | None, layers: int) -> list[torch.device] | None:
    """Consecutive layers share a device: layer i goes to devices[i * len(devices) // layers]."""
    if not devices:
        return None
    return [torch.device(devices[i * len(devices) // layers]) for i in range(layers)]


class RNNStack(nn.Module):
    """`layers` cells of one kind; `forward` runs layer by layer over the whole sequence, `step` one token."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, layers: int, dropout: float = 0.0,
                 irnn_scale: float = 1.0, devices: list[str] | None = None):
        super().__init__()
        self.cells = nn.ModuleList(make_cell(cell, input_size if i == 0 else hidden_size, hidden_size, irnn_scale)
                                   for i in range(layers))
        self.drop = nn.Dropout(dropout)
        self.devices = layer_devices(devices, layers)
        if self.devices:
            for c, d in zip(self.cells, self.devices):
                c.to(d)

    def _device(self, i: int) -> torch.device:
        return self.devices[i] if self.devices else next(self.cells[i].parameters()).device

    def init_states(self, batch_size: int, device=None) -> list[State]:
        return [c.init_state(batch_size, None if self.devices else device) for c in self.cells]

    def forward(self, x: torch.Tensor, states: list[State] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x [B, T, I] -> (top-layer outputs [B, T, H] after dropout, every layer's h sequence [B, T, H])."""
        hiddens = []
        for i, cell in enumerate(self.cells):
            x = x.to(self._device(i))
            pre = cell.precompute(x)
            st = states[i] if states is not None else cell.init_state(x.shape[0], x.device)
            outs = []
            for t in range(x.shape[1]):
                st = cell.recur(tuple(p[:, t] for p in pre), st)
                outs.append(st[0])
            h = torch.stack(outs, dim=1)
            hiddens.append(h)
            x = self.drop(h)
        return x, hiddens

    def step(self, x: torch.Tensor, states: list[State]) -> tuple[torch.Tensor, list[State]]:
        """x [B, I] -> (top-layer h [B, H], new states)."""
        new = []
        for i, cell in enumerate(self.cells):
            if self.devices:
                x = x.to(self.devices[i])
            st = cell.step(x, states[i])
            new.append(st)
            x = st[0]
        return x, new


@dataclass
class AveragingState:
    """Running sums of each layer's h for hidden-state averaging (Seq2Seq Upgrade)."""

    influence: float = 0.0
    sums: list[torch.Tensor] | None = None
    n: int = 0

    def feed(self, states: list[State]) -> list[State]:
        """The states to feed the next step: influence · mean(h_1..h_t) + (1 − influence) · h_t (h only)."""
        if not self.influence:
            return states
        hs = [s[0] for s in states]
        self.sums = hs if self.sums is None else [a + h for a, h in zip(self.sums, hs)]
        self.n += 1
        a = self.influence
        return [(a * (m / self.n) + (1 - a) * s[0],) + tuple(s[1:]) for m, s in zip(self.sums, states)]

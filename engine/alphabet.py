"""A text model's alphabet: the bytes it was trained on, given rows and outputs of its own.

Text models speak UTF-8 byte ids 0-255 (engine.text), so every model reads any prompt and the generator,
sampler and checkpoints need no vocabulary file.  A model trained on a small alphabet (makemore's names:
a-z and the newline) would still pay for 256 embedding rows and 256 outputs it never uses: at makemore's size
that is a third of the parameters.  With an alphabet the model keeps rows and outputs only for its own bytes:
`index` maps byte ids to rows, `expand` scatters its logits back to 256 with -inf wherever it has no symbol.
Ids in and logits out stay bytes, so the protocol, the sampler and the fast path see nothing new.

`symbols=None` is the identity (all `vocab_size` ids), costing nothing.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .errors import UserError


def check_symbols(symbols: Sequence[int] | None, vocab_size: int, *needed: int | None) -> list[int] | None:
    """A config's alphabet as a sorted list of distinct ids in the vocab that holds every `needed` id."""
    if symbols is None:
        return None
    if isinstance(symbols, str):
        raise UserError(f"alphabet must be a list of byte ids, got {symbols!r} (\"data\" is filled in by the "
                         "trainer from the training data)")
    out = sorted({int(s) for s in symbols})
    if len(out) < 2 or out[0] < 0 or out[-1] >= vocab_size:
        raise UserError(f"alphabet needs at least 2 distinct ids in 0..{vocab_size - 1}")
    missing = [i for i in needed if i is not None and i not in out]
    if missing:
        raise UserError(f"alphabet must hold the start/end ids {missing}")
    return out


def describe(symbols: Sequence[int]) -> str:
    """The alphabet as a user reads it, e.g. "newline, a-z"."""
    names = {9: "tab", 10: "newline", 32: "space"}

    def show(s: int) -> str:
        return names.get(s) or (chr(s) if 33 <= s < 127 else f"byte {s}")

    symbols, parts, i = list(symbols), [], 0
    while i < len(symbols):
        j = i  # extend a run of consecutive printable characters (a-z, 0-9)
        while (33 <= symbols[i] < 127 and j + 1 < len(symbols) and symbols[j + 1] == symbols[j] + 1
               and symbols[j + 1] < 127):
            j += 1
        joiner = "-" if j > i + 1 else ", "  # a-z, but "a, b" for a run of two
        parts.append(show(symbols[i]) if j == i else f"{show(symbols[i])}{joiner}{show(symbols[j])}")
        i = j + 1
    return ", ".join(parts)


class Alphabet(nn.Module):
    """Byte ids <-> a model's own rows.  `size` is how many rows/outputs the model needs."""

    def __init__(self, symbols: Sequence[int] | None, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.symbols = None if symbols is None else [int(s) for s in symbols]
        self.size = vocab_size if symbols is None else len(self.symbols)
        if self.symbols is not None:
            rows = torch.full((vocab_size,), -1, dtype=torch.long)
            rows[self.symbols] = torch.arange(len(self.symbols))
            # derived from the config, so not saved in checkpoints
            self.register_buffer("rows", rows, persistent=False)
            self.register_buffer("ids", torch.tensor(self.symbols, dtype=torch.long), persistent=False)

    def index(self, ids: torch.Tensor) -> torch.Tensor:
        """Byte ids -> row ids; a byte outside the alphabet is a UserError naming the alphabet."""
        if self.symbols is None:
            return ids
        rows = self.rows[ids]
        if rows.numel() and bool((rows < 0).any()):
            bad = sorted({int(i) for i in ids[rows < 0].flatten().tolist()})[:5]
            shown = ", ".join(f"{chr(b)!r} (byte {b})" if 32 <= b < 127 else f"byte {b}" for b in bad)
            raise UserError(f"{shown}: outside this model's alphabet ({describe(self.symbols)})")
        return rows

    def expand(self, logits: torch.Tensor) -> torch.Tensor:
        """[..., size] -> [..., vocab_size], -inf for bytes the model cannot emit."""
        if self.symbols is None:
            return logits
        out = logits.new_full((*logits.shape[:-1], self.vocab_size), float("-inf"))
        out[..., self.ids] = logits
        return out

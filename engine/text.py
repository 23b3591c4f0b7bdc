"""Text codec: UTF-8 bytes as ids 0-255.  No character is ever unknown; decoding never raises."""
from __future__ import annotations

import codecs
from collections.abc import Iterable

BYTE_VOCAB = 256
NEWLINE = 10


def encode(text: str) -> list[int]:
    """str -> UTF-8 byte ids (lone surrogates are replaced rather than raising)."""
    return list(text.encode("utf-8", errors="replace"))


def decode(ids: Iterable[int]) -> str:
    """Byte ids -> str; ids >= 256 (special ids) are dropped, invalid or partial sequences become U+FFFD."""
    return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


class StreamDecoder:
    """Decodes ids chunk by chunk; a multi-byte character split across chunks comes out whole."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, ids: Iterable[int]) -> str:
        return self._dec.decode(bytes(int(i) for i in ids if 0 <= int(i) < 256))

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)

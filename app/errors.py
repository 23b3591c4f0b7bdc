"""The one exception type handlers raise for bad input: its message is shown to the user as is.

It is engine.errors.UserError itself, so an engine or trainers error a user can fix (a corrupt checkpoint, a
temperature out of range, an empty data folder) becomes a toast without any translation.
"""
from __future__ import annotations

from engine.errors import UserError

__all__ = ["UserError"]

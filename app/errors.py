"""The one exception type handlers raise for bad input: its message is shown to the user as is."""
from __future__ import annotations


class UserError(ValueError):
    """Input the app cannot use; the message says what is wrong and what to do, in one line."""

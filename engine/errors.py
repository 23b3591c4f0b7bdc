"""The one exception type for input a user can fix.

`UserError` is raised for anything a user typed, picked or pointed at that cannot be used: a bad flag value, a
missing or corrupt file, a temperature out of range, a config field that does not exist.  Its message is one
line that says what is wrong (and, where it can, what to do), so the CLIs print it as `error: <message>` and
exit with status 2, and the app shows it as a toast.  Every other exception is a bug and keeps its traceback.

It subclasses ValueError, so code (and tests) that catch ValueError still catch it.
"""
from __future__ import annotations


class UserError(ValueError):
    """Input a user can fix; its message is shown as one line."""


def one_line(exc: BaseException) -> str:
    """An exception's message as the single line a user sees (its first line; the type name if it has none)."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:  # "[Errno 21] Is a directory: 'x'" -> "x: is a directory"
        name = exc.filename if exc.filename is not None else ""
        text = f"{name}: {exc.strerror[:1].lower()}{exc.strerror[1:]}" if name != "" else exc.strerror
    return text.splitlines()[0] if text else type(exc).__name__

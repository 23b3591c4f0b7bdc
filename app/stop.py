"""Stop buttons: one switch per browser session and per tab, set by Stop and checked by the running work between
chunks.

A cooperative stop (rather than Gradio's `cancels=`, which kills the generator mid-yield) lets the generation end
cleanly and still hand back what it made so far: the wav, the plot and the text.

Keys are "<tab>:<session hash>", so one user's Stop never touches another user's run, and the Generate tab's Stop
never touches a Speed run.  A Stop that arrives while the session's request still waits in the queue (another
user holds the CPU) is remembered: `waiting(key)` says how many requests of that key are queued, and that many
later `arm` calls start already stopped, so the run ends at once instead of playing in full.
"""
from __future__ import annotations

import threading
from collections.abc import Callable


class StopSwitch:
    def __init__(self, waiting: Callable[[str], int] | None = None) -> None:
        self._events: dict[str, threading.Event] = {}
        self._pending: dict[str, int] = {}  # key -> queued requests that were stopped before they started
        self._lock = threading.Lock()
        self.waiting = waiting or (lambda _key: 0)

    def arm(self, key: str) -> threading.Event:
        """A fresh event for a new run of `key` (an older run of the same key is told to stop); already set when
        Stop was pressed while this request waited in the queue."""
        event = threading.Event()
        with self._lock:
            old = self._events.get(key)
            if old is not None:
                old.set()
            self._events[key] = event
            if self._pending.get(key, 0) > 0:
                self._pending[key] -= 1
                if not self._pending[key]:
                    del self._pending[key]
                event.set()
        return event

    def stop(self, key: str) -> bool:
        """Ask the running work of `key` to stop, and any of its requests still queued; False when there was
        nothing to stop."""
        try:
            queued = max(0, int(self.waiting(key)))
        except Exception:  # the queue could not be read: a running request is still stopped
            queued = 0
        with self._lock:
            event = self._events.get(key)
            running = event is not None and not event.is_set()
            if running:
                event.set()
            if queued:
                self._pending[key] = queued
        return running or bool(queued)

    def release(self, key: str, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(key) is event:
                del self._events[key]

"""Stop buttons: one switch per browser session, set by Stop and checked by the running generation between chunks.

A cooperative stop (rather than Gradio's `cancels=`, which kills the generator mid-yield) lets the generation end
cleanly and still hand back what it made so far: the wav, the plot and the text.
"""
from __future__ import annotations

import threading


class StopSwitch:
    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def arm(self, key: str) -> threading.Event:
        """A fresh event for a new run of session `key` (an older run of the same session is told to stop)."""
        event = threading.Event()
        with self._lock:
            old = self._events.get(key)
            if old is not None:
                old.set()
            self._events[key] = event
        return event

    def stop(self, key: str) -> bool:
        """Ask the running generation of session `key` to stop; False when nothing was running."""
        with self._lock:
            event = self._events.get(key)
        if event is None or event.is_set():
            return False
        event.set()
        return True

    def release(self, key: str, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(key) is event:
                del self._events[key]

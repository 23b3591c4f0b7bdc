"""Put an `ffmpeg` executable on PATH: Gradio's streamed audio output pipes PCM through `ffmpeg` to AAC.

The `imageio-ffmpeg` wheel carries a static ffmpeg binary under a versioned name, so a fresh install needs no
system package and no manual step: we link it as `ffmpeg` in a private folder and prepend that to PATH.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def ensure_ffmpeg() -> str | None:
    """Return the path of the `ffmpeg` Gradio will run; link the wheel's binary onto PATH if none is there."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None
    folder = Path(tempfile.gettempdir()) / f"playground-ffmpeg-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / ("ffmpeg.exe" if os.name == "nt" else "ffmpeg")
    if not link.exists():
        if link.is_symlink():  # left by an older install whose binary moved
            link.unlink(missing_ok=True)
        try:
            link.symlink_to(exe)
        except FileExistsError:  # another process linked it first
            pass
        except OSError:  # no symlinks (some Windows setups): a copy works as well
            shutil.copy2(exe, link)
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
    return shutil.which("ffmpeg")

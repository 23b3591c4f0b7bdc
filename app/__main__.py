"""`python -m app`: serve the playground on 127.0.0.1:7860 (0.0.0.0 on a Hugging Face Space, where SPACE_ID is set).

PORT / GRADIO_SERVER_PORT and GRADIO_SERVER_NAME override the defaults.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

if __package__ in (None, ""):  # run as a file (a Space's app_file): import from the repo root, not from app/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app.ffmpeg import ensure_ffmpeg  # noqa: E402
from app.errors import UserError  # noqa: E402
from app.limits import Limits  # noqa: E402


def server_name() -> str:
    if os.environ.get("GRADIO_SERVER_NAME"):
        return os.environ["GRADIO_SERVER_NAME"]
    return "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"


def server_port() -> int:
    return int(os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or 7860)


def main() -> None:
    if ensure_ffmpeg() is None:
        print("warning: no ffmpeg found (pip install imageio-ffmpeg); audio prompts recorded by a browser (webm, m4a) "
              "will not decode",
              file=sys.stderr)
    from app.ui import build_app

    # Generation is one token at a time: small ops where a second intra-op thread only adds synchronisation
    # (on a busy 2-core machine the naive Speed-tab timings came out 100x too slow with 2 threads).  One thread
    # per request also leaves cores for other users and training jobs.  PLAYGROUND_THREADS overrides.
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("PLAYGROUND_THREADS", "1"))))
    try:
        limits = Limits.from_env()
    except UserError as e:  # a bad PLAYGROUND_* setting: one line, exit status 2
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    demo, app = build_app(limits)
    threading.Thread(target=app.warm_up, name="warm-up", daemon=True).start()
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=server_name(), server_port=server_port(), max_file_size=f"{limits.max_upload_mb}mb",
                show_error=True, footer_links=["api", "gradio"])


if __name__ == "__main__":
    main()

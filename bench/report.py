"""Write one section of docs/BENCHMARKS.md in place, leaving every other section as it is."""
from __future__ import annotations

import platform
import re
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def write_section(heading: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the body under `## {heading}` (up to the next `## `), or append the section if it is new."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"(^## {re.escape(heading)}\n)(.*?)(?=^## |\Z)", re.S | re.M)
    section = f"## {heading}\n\n{body.strip()}\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda m: section, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)

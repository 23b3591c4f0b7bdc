"""A fresh clone stands on its own: its docs link only to files it holds, nothing it ships points at a folder
beside it, and every shipped model names its data and carries that data's license.  Fast; needs no datasets."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODELS = ROOT / "assets" / "models"
OUTSIDE = "../" + "shared"  # spelled in two halves so this file does not name it either

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)


def links(markdown: str) -> list[str]:
    """Targets of inline and reference links and images, outside fenced code blocks."""
    text = FENCE.sub("", markdown)
    return LINK.findall(text) + REFERENCE.findall(text)


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    out = set()
    for line in FENCE.sub("", markdown).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            title = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)).strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """Relative links of `md` whose file is missing or outside `root` (or whose #anchor is not a heading there)."""
    bad = []
    for target in links(md.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # http(s)://, mailto:, ... and anchors within the page
        path, _, fragment = target.partition("#")
        resolved = (md.parent / path).resolve()
        if not resolved.is_relative_to(root.resolve()):
            bad.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            bad.append(f"{target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved.read_text(encoding="utf-8")):
            bad.append(f"{target} (no heading #{fragment} in {resolved.name})")
    return bad


def tracked_files() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in result.stdout.decode("utf-8", "replace").split("\0") if name]


def path_like(data: object) -> bool:
    """Whether a config's training "data" is a filesystem path rather than the name of a dataset."""
    if not isinstance(data, str) or not data.strip():
        return True  # a shipped model must name its data
    data = data.strip()
    return (data.startswith(("/", "~", "./", "\\")) or "../" in data or "..\\" in data
            or bool(re.match(r"^[A-Za-z]:[\\/]", data)))


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_in_the_docs_resolves_inside_the_repository(md):
    assert not (bad := broken_links(md)), f"{md.relative_to(ROOT)}: " + "; ".join(bad)


def test_no_tracked_file_outside_tests_points_at_a_folder_beside_the_repository():
    hits = []
    for name in tracked_files():
        if name.startswith("tests/") or not (ROOT / name).is_file():
            continue
        if OUTSIDE.encode() in (ROOT / name).read_bytes():
            hits.append(name)
    assert not hits, f"these tracked files name {OUTSIDE} (use engine.paths.data_root / $PLAYGROUND_DATA): {hits}"


@pytest.mark.parametrize("folder", sorted(p for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else [],
                         ids=lambda p: p.name)
def test_every_shipped_model_names_its_data_and_carries_its_license(folder):
    config = folder / "config.json"
    assert config.is_file(), f"{folder.name} has no config.json"
    training = json.loads(config.read_text(encoding="utf-8")).get("training", {})
    assert not path_like(training.get("data")), (
        f"{folder.name}: training.data is {training.get('data')!r}; name the dataset, not a local path")
    notice = folder / "DATA_LICENSE.md"
    assert notice.is_file() and notice.read_text(encoding="utf-8").strip(), f"{folder.name} has no DATA_LICENSE.md"


def test_the_checks_catch_what_they_should(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "OTHER.md").write_text("# Public datasets\n")
    md = tmp_path / "README.md"
    md.write_text("[ok](docs/OTHER.md) [ok](docs/OTHER.md#public-datasets) [web](https://example.com/x) [top](#x)\n"
                  "![img](docs/missing.png) [up](../elsewhere/DESIGN.md) [anchor](docs/OTHER.md#nope)\n"
                  "```\n[in code](not/checked.md)\n```\n[ref]: docs/gone.md\n")
    bad = broken_links(md, root=tmp_path)
    assert [b.split(" ")[0] for b in bad] == ["docs/missing.png", "../elsewhere/DESIGN.md", "docs/OTHER.md#nope",
                                              "docs/gone.md"], bad
    assert links("[`docs/DESIGN.md`](docs/DESIGN.md)") == ["docs/DESIGN.md"]
    for path in ("/data/names.txt", "../data/names.txt", "~/names.txt", "C:\\data\\x", "", None, "./x"):
        assert path_like(path), path
    for name in ("Free Spoken Digit Dataset (recordings/*.wav)", "makemore names.txt",
                 "generated: python scripts/make_dates.py runs/dates.tsv"):
        assert not path_like(name), name

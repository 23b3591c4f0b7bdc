"""Safe loading: no code path in the product can unpickle (checkpoints are safetensors + JSON only)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = re.compile(r"torch\.load\(|^\s*(import|from)\s+(c?pickle|cloudpickle|dill|joblib|marshal)\b|pickle\.loads?\("
                       r"|joblib\.load|allow_pickle\s*=\s*True|torch\.serialization|marshal\.loads")


def test_no_pickle_capable_loading_in_the_product():
    hits = []
    for package in ("engine", "trainers", "app", "bench"):
        for f in sorted((ROOT / package).rglob("*.py")):
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if FORBIDDEN.search(code):
                    hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "pickle-capable loading found:\n" + "\n".join(hits)


def test_the_guard_catches_what_it_should():
    for bad in ("state = torch.load(path)", "import pickle", "x = np.load(f, allow_pickle=True)"):
        assert FORBIDDEN.search(bad)
    assert not FORBIDDEN.search("tensors = load_file(path)")
    assert not FORBIDDEN.search("refusing to load pickle files")

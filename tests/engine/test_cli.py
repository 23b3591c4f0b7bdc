"""`python -m engine.generate`: it writes audio/text, and bad input is one clear line with a non-zero exit."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import engine
from engine.generate import main


@pytest.fixture
def audio_model(tmp_path):
    model = engine.build_model("wavenet", layers_per_block=3, blocks=1, residual_channels=4, gate_channels=4,
                               skip_channels=4, n_classes=256, sample_rate=8000, global_cond_classes=10)
    return engine.save_model(model, tmp_path / "wn")


def test_generates_a_wav_of_the_requested_length(audio_model, tmp_path):
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, 0.3 * np.sin(np.arange(44100) / 10.0), 44100)  # another rate: resampled to 8 kHz
    out = tmp_path / "out.wav"
    assert main(["--model", str(audio_model), "--prompt-audio", str(prompt), "--seconds", "0.25", "--cond", "3",
                 "--temperature", "0.9", "--seed", "1", "--out", str(out)]) == 0
    wave, rate = sf.read(out)
    assert rate == 8000 and len(wave) == 2000


@pytest.mark.parametrize("extra,match", [
    (["--temperature", "nan"], "temperature"), (["--temperature", "-1"], "temperature"),
    (["--seconds", "0"], "--seconds"), (["--tokens", "0"], "--tokens"),
    (["--prompt-audio", "/no/such.wav"], "not found"), (["--prompt-text", "hi"], "text model"),
    (["--cond", "12"], "class ids"), (["--out", "x.mp3"], ".wav"),
])
def test_bad_input_is_one_line_and_exit_2(audio_model, tmp_path, capsys, extra, match):
    args = ["--model", str(audio_model), "--tokens", "10", "--cond", "1", "--out", str(tmp_path / "o.wav")]
    if "--seconds" in extra or "--tokens" in extra:
        args = [a for a in args if a not in ("--tokens", "10")]
    if "--cond" in extra:
        args = args[:args.index("--cond")] + args[args.index("--cond") + 2:]
    if "--out" in extra:
        args = args[:args.index("--out")] + args[args.index("--out") + 2:]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0]


def test_corrupt_wav_and_missing_model(audio_model, tmp_path, capsys):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF" + b"\x07" * 100)
    assert main(["--model", str(audio_model), "--prompt-audio", str(bad), "--cond", "0", "--tokens", "5"]) == 2
    assert main(["--model", str(tmp_path / "nope"), "--tokens", "5"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "cannot read corrupt.wav" in lines[0] and "no checkpoint" in lines[1]


def test_subprocess_prints_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "engine.generate", "--model", str(tmp_path), "--tokens", "x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_text_model_prints_text_and_writes_a_file(tmp_path, capsys):
    model = engine.build_model("bytenet", d=8, sets=1, set_size=2)
    path = engine.save_model(model, tmp_path / "bn")
    assert main(["--model", str(path), "--prompt-text", "héllo", "--tokens", "40", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert len(printed.encode("utf-8", errors="surrogatepass")) >= 1
    out = tmp_path / "gen.txt"
    assert main(["--model", str(path), "--prompt-text", "héllo", "--tokens", "40", "--seed", "2", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") + "\n" == printed
    assert main(["--model", str(path), "--prompt-audio", str(out), "--tokens", "4"]) == 2
    assert main(["--model", str(path), "--seconds", "1"]) == 2


def test_engine_generate_stays_callable_after_importing_the_cli_module():
    import importlib

    import engine.generate as cli_module
    importlib.reload(cli_module)
    model = engine.build_model("wavenet", layers_per_block=1, blocks=1, residual_channels=4, gate_channels=4,
                               skip_channels=4, n_classes=16)
    chunks = list(engine.generate(model, None, max_new_tokens=5, seed=0))
    assert sum(c.shape[1] for c in chunks) == 5

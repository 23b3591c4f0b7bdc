"""`python -m engine`: it writes audio/text, and bad input is one clear line with exit status 2."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import engine
from engine.cli import main


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
    r = subprocess.run([sys.executable, "-m", "engine", "--model", str(tmp_path), "--tokens", "x"],
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


@pytest.fixture
def dates_model():
    from engine.paths import SHIPPED_MODELS
    path = SHIPPED_MODELS / "seq2seq-dates"
    if not path.is_dir():
        pytest.skip("demo model not shipped")
    return str(path)


@pytest.mark.parametrize("source,iso", [("3 March 2021", "2021-03-03"), ("vendredi 5 mars 2021", "2021-03-05"),
                                        ("5. März 2021", "2021-03-05")])
@pytest.mark.parametrize("decode", [["--seed", "1"], ["--temperature", "0"], ["--beam-width", "3"]])
def test_a_seq2seq_model_rewrites_its_source(dates_model, capsys, tmp_path, source, iso, decode):
    assert main(["--model", dates_model, "--source", source, *decode]) == 0
    assert capsys.readouterr().out == iso + "\n"
    out = tmp_path / "iso.txt"
    assert main(["--model", dates_model, "--source", source, *decode, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == iso


@pytest.mark.parametrize("args,match", [
    ([], "give the text to rewrite with --source"), (["--source", ""], "with --source"),
    (["--prompt-text", "3 March 2021"], "with --source, not a prompt"),
    (["--source", "3 March", "--cond", "1"], "takes --source"),
    (["--source", "3 March", "--beam-width", "0"], "--beam-width must be 1 or more"),
    (["--source", "3 March", "--beam-width", "2", "--temperature", "0.5"], "takes no sampling options"),
])
def test_seq2seq_misuse_is_one_line(dates_model, capsys, args, match):
    assert main(["--model", dates_model, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0], err


@pytest.mark.parametrize("args,match", [
    (["--source", "3 March 2021"], "--source is for sequence-to-sequence models"),
    (["--beam-width", "2"], "--beam-width is for sequence-to-sequence models"),
    (["--cond", "1"], "not class-conditioned"),
])
def test_a_language_model_refuses_seq2seq_flags(tmp_path, capsys, args, match):
    path = engine.save_model(engine.build_model("bytenet", d=8, sets=1, set_size=2), tmp_path / "bn")
    assert main(["--model", str(path), "--tokens", "5", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


@pytest.mark.parametrize("extra,match", [
    (["--device", "foo"], "unknown device 'foo'"),
    pytest.param(["--device", "cuda"], "no CUDA GPU", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="this machine has a GPU")),
    (["--device", "cuda:99"], "cuda:99"),
    (["--top-k", "100000000000000000000"], "top_k must be a whole number from 0 to"),
    (["--seed", "99999999999999999999999"], "--seed must be a whole number from 0 to"),
    (["--seed", "-1"], "--seed"),
    (["--out", "/no/such/folder/o.wav"], "does not exist"),
    (["--seconds", "1e300"], "--seconds must be at most 12500"),
    pytest.param(["--out", "/proc/o.wav"], "cannot write /proc/o.wav", marks=pytest.mark.skipif(
        not __import__("os").path.isdir("/proc/self"), reason="needs a folder nobody can write in")),
])
def test_bad_device_top_k_seed_and_out_folder_are_one_line_in_a_subprocess(audio_model, tmp_path, extra, match):
    args = ["--model", str(audio_model), "--cond", "1"] + ([] if "--seconds" in extra else ["--tokens", "5"])
    if "--out" not in extra:
        args += ["--out", str(tmp_path / "o.wav")]
    r = subprocess.run([sys.executable, "-m", "engine", *args, *extra], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], r.stderr


def test_a_conditioned_model_without_cond_names_its_classes(audio_model, capsys):
    assert main(["--model", str(audio_model), "--tokens", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "conditioned on 10 classes" in err and "0..9" in err


@pytest.mark.parametrize("exc", [TypeError("internal"), ValueError("an internal invariant"), KeyError("x")])
def test_a_bug_is_not_a_user_error_it_keeps_its_traceback(audio_model, tmp_path, monkeypatch, capsys, exc):
    import engine.cli

    def broken(*args, **kwargs):
        raise exc
    monkeypatch.setattr(engine.cli, "generate", broken)
    with pytest.raises(type(exc)):
        main(["--model", str(audio_model), "--tokens", "5", "--cond", "1", "--out", str(tmp_path / "o.wav")])
    assert "error:" not in capsys.readouterr().err


def test_a_user_error_from_deep_inside_is_still_one_line(audio_model, tmp_path, monkeypatch, capsys):
    import engine.cli

    def refuses(*args, **kwargs):
        raise engine.UserError("a reason the user can act on\nand a second line nobody needs")
    monkeypatch.setattr(engine.cli, "generate", refuses)
    assert main(["--model", str(audio_model), "--tokens", "5", "--cond", "1", "--out", str(tmp_path / "o.wav")]) == 2
    assert capsys.readouterr().err == "error: a reason the user can act on\n"

"""`python -m trainers`: a user error is one line and exit status 2; a bug keeps its traceback."""
import json
import subprocess
import sys

import pytest

from trainers.cli import main


@pytest.fixture
def names(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia"] * 20) + "\n")
    return path


def test_out_an_existing_file_is_only_its_one_line(names, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "trainers", "train", "--family", "rnn", "--data", str(names),
                        "--out", str(taken), "--max-steps", "1", "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"error: --out {taken} is a file; give a folder for the run (it is created if missing)\n"
    assert taken.read_text() == "not a folder"


@pytest.mark.parametrize("args,match", [
    (["--set", "lr=abc"], "--set lr: expected a number, got 'abc'"),
    (["--set", "max_steps=1.5"], "--set max_steps: expected a whole number"),
    (["--set", "cell=foo"], "cell must be one of"),
    (["--set", "nope=1"], "--set nope: not a training field"),
    (["--device", "foo"], "unknown device 'foo'"),
    pytest.param(["--device", "cuda"], "no CUDA GPU", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="this machine has a GPU")),
    (["--family", "nope"], "unknown model family 'nope'"),
    (["--preset", "huge"], "huge"),
    (["--lr", "-1"], "--lr must be a positive number"), (["--lr", "nan"], "--lr must be a positive number"),
    (["--minutes", "nan"], "--minutes must be positive"), (["--threads", "-2"], "--threads must be"),
    (["--seed", "99999999999999999999999"], "--seed must be a whole number"),
])
def test_user_errors_are_one_line_and_exit_2(names, tmp_path, capsys, args, match):
    base = {"--family": "rnn", "--data": str(names), "--out": str(tmp_path / "run"), "--max-steps": "1"}
    for flag in args[::2]:
        base.pop(flag, None)
    argv = ["train", *[x for kv in base.items() for x in kv], "--no-progress", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0], err


@pytest.mark.parametrize("args,match", [
    ([], "no checkpoint"), (["--batch-size", "0"], "--batch-size and --max-tokens must be positive"),
    (["--threads", "-1"], "--threads must be"), (["--device", "foo"], "unknown device 'foo'"),
])
def test_eval_user_errors_are_one_line(names, tmp_path, capsys, args, match):
    assert main(["eval", "--model", str(tmp_path / "missing"), "--data", str(names), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


@pytest.mark.parametrize("exc", [TypeError("a bug"), ValueError("an internal invariant broke")])
def test_a_bug_in_training_propagates_and_marks_the_run_failed(names, tmp_path, monkeypatch, capsys, exc):
    import trainers.train

    def broken(cfg, **kwargs):
        (tmp_path / "run").mkdir(exist_ok=True)
        raise exc
    monkeypatch.setattr(trainers.train, "train", broken)
    with pytest.raises(type(exc)):
        main(["train", "--family", "rnn", "--data", str(names), "--out", str(tmp_path / "run"), "--max-steps", "1",
              "--no-progress"])
    assert "error:" not in capsys.readouterr().err  # not dressed up as a user error
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == f"{type(exc).__name__}: {exc}"


def test_a_bug_in_eval_propagates(names, tmp_path, monkeypatch):
    import trainers.evaluate

    def broken(*args, **kwargs):
        raise TypeError("a bug")
    monkeypatch.setattr(trainers.evaluate, "evaluate_checkpoint", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["eval", "--model", str(tmp_path), "--data", str(names)])


def test_a_bug_shows_its_traceback_in_a_subprocess(tmp_path):
    code = ("import sys, trainers.train, trainers.cli\n"
            "def broken(cfg, **kw): raise TypeError('a bug')\n"
            "trainers.train.train = broken\n"
            "sys.exit(trainers.cli.main(sys.argv[1:]))\n")
    names = tmp_path / "n.txt"
    names.write_text("emma\nava\n" * 50)
    r = subprocess.run([sys.executable, "-c", code, "train", "--family", "rnn", "--data", str(names), "--out",
                        str(tmp_path / "run"), "--max-steps", "1", "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" in r.stderr and "TypeError: a bug" in r.stderr

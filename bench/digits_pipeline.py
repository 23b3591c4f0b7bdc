"""Judge the digits pipeline (token LM + vocoder) and its vocoder, by measurement.

    .venv/bin/python bench/digits_pipeline.py --model assets/models/digits-pipeline [--per-digit 10] [--json F]

1. The digit classifier of bench/wavenet_digits.py (a CNN on log-mel, trained on the real training takes 5-49 only)
   on the real test clips (takes 0-4): how well digits can be told apart at all.
2. Copy-synthesis: `--copies` test clips per digit (every speaker, takes 0-4, in file order, no selection) re-spoken
   by the vocoder from their own frames, classified; and the same clips through the tokens (frames -> nearest
   codebook token -> its decoded frame -> vocoder): what the vocoder makes of the frames a plan gives it; with a
   token decoder in the pipeline, also through the bare centroids (what the decoder adds).
3. `--per-digit` pipeline generations per digit at temperature 1, seeds 0 .. per-digit - 1 (no selection; other
   seeds with `--first-seed`, for choosing a setting on seeds that are not the reported ones),
   classified; how many planned token sequences equal a training clip's token sequence (the LM must generate,
   not retrieve).
4. Held-out bits/sample of the vocoder given the true frames, beside `--baseline` (an unconditioned WaveNet) on the
   same held-out clips (real audio, no appended silence).
5. Vocoder speed on one thread (fast path, batch 1), samples/s and x real time.
6. docs/digits-pipeline-spectrograms.png: per digit a real test clip, its copy-synthesis and a generation.
7. The token LM's own classifier: on every held-out take's token sequence (phase 0), the digit whose prefix makes
   the LM score the take's tokens highest (argmax over c of log p(tokens | c)): how firmly the planner ties a
   digit to its frames, in seconds, with no vocoder and no sampling (it tracked the generations' figure across
   planners: 84 / 89 / 95 % for LMs that named 58.5 / 65 / 72 % of their generations at guidance 1).
8. With `--renderings N` (> 1), every plan is also played N - 1 more times by the vocoder with other seeds, to
   tell the planner from the renderer: a plan named wrongly in every rendering is a wrong plan (or one the
   vocoder always mis-speaks), one named wrongly only sometimes is the vocoder's sampling.
`--vocoder CKPT` judges another vocoder in the pipeline's place (e.g. one trained on decoded frames), and
`--vocoder-temperature T` samples the vocoder at T (default: the pipeline's own), `--guidance G` plans with
classifier-free guidance G (default: the pipeline's own; 1 = none), `--only-generations` skips 2, 4 and 5 (for
comparing planners).  Exact copies are counted against every training take at each frame phase its token LM was
trained on (token_shifts in the pipeline's training record, else the digit-tokens preset's).
The data is read through the data setting (PLAYGROUND_DATA; skipped with a message when absent).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import engine  # noqa: E402
from bench.spectrograms import spectrogram_grid  # noqa: E402
from bench.wavenet_digits import FSDD, RATE, features, load_fsdd, predict, train_classifier  # noqa: E402
from engine.audio import decode_audio, read_audio  # noqa: E402
from engine.features import LogMel  # noqa: E402
from engine.frame_tokens import FrameCodebook  # noqa: E402
from engine.protocol import Conditioning  # noqa: E402
from trainers.data.audio import FSDD_NAME, speed_rate  # noqa: E402
from trainers.evaluate import evaluate_checkpoint  # noqa: E402
from trainers.presets import get_preset  # noqa: E402


def test_clips(per_digit: int) -> dict[int, list[np.ndarray]]:
    """The first `per_digit` held-out clips (takes 0-4) of each digit, in file order."""
    out: dict[int, list[np.ndarray]] = {d: [] for d in range(10)}
    for f in sorted(FSDD.glob("*.wav")):
        m = FSDD_NAME.match(f.name)
        if m and int(m.group(3)) < 5 and len(out[int(m.group(1))]) < per_digit:
            out[int(m.group(1))].append(read_audio(f, RATE)[0])
    return out


def play(model, frames: torch.Tensor, n: int, seed: int, temperature: float = 1.0) -> np.ndarray:
    ids = engine.generate_all(model, None, max_new_tokens=n, cond=Conditioning(frames=frames), seed=seed,
                              batch_size=1, chunk_size=4096, temperature=temperature)
    return decode_audio(ids[0], model.tokens).numpy()


def classify(clf, norm, waves: list[np.ndarray]) -> torch.Tensor:
    return predict(clf, norm, torch.tensor(np.stack([features(w) for w in waves])))


def training_token_sequences(pipe, phases: int, speeds=()) -> set[tuple[int, ...]]:
    """Every training take's token sequence at each of `phases` frame phases and each playback speed (1 and
    `speeds`; offsets and speeds as in trainers/data/tokens.token_sequences)."""
    features_cfg = pipe.frame_features
    mel, seqs = LogMel(features_cfg), set()
    for f in sorted(FSDD.glob("*.wav")):
        m = FSDD_NAME.match(f.name)
        if m and int(m.group(3)) >= 5:
            for speed in (1.0, *speeds):
                wave = torch.from_numpy(read_audio(f, speed_rate(RATE, speed))[0])
                for k in range(phases):
                    seqs.add(tuple(pipe.codebook.encode(mel(wave[k * features_cfg.hop // phases:]))[0].tolist()))
    return seqs


def lm_implicit_accuracy(pipe) -> float:
    """The share of held-out takes (0-4, phase 0) whose tokens the LM scores highest after their own digit's
    prefix: argmax over c of log p(tokens, end | start, c); the prefix itself is not scored."""
    mel, layout, right, n = LogMel(pipe.frame_features), pipe.layout, 0, 0
    classes = torch.arange(10)
    with torch.inference_mode():
        for f in sorted(FSDD.glob("*.wav")):
            m = FSDD_NAME.match(f.name)
            if not m or int(m.group(3)) >= 5:
                continue
            codes = pipe.codebook.encode(mel(torch.from_numpy(read_audio(f, RATE)[0])))[0]
            rows = torch.stack([layout.sequence(codes, int(c)) for c in classes])
            logp = torch.log_softmax(pipe.lm(rows[:, :-1]).float(), -1).gather(-1, rows[:, 1:, None])[..., 0]
            right += int(logp[:, 1:].sum(1).argmax()) == int(m.group(1))
            n += 1
    return right / n


def vocoder_speed(vocoder, seconds: float = 3.0) -> float:
    """Samples/s of the vocoder on one thread (fast path, batch 1), over `seconds` of its own sample rate."""
    torch.set_num_threads(1)
    frames = torch.rand(1, vocoder.frame_features.n_mels, 2000)
    n = int(seconds * vocoder.frame_features.sample_rate)
    engine.generate_all(vocoder, None, max_new_tokens=256, cond=Conditioning(frames=frames), seed=0,
                        batch_size=1, chunk_size=256)  # compile and warm the fast path outside the timing
    t = time.perf_counter()
    engine.generate_all(vocoder, None, max_new_tokens=n, cond=Conditioning(frames=frames), seed=0,
                        batch_size=1, chunk_size=2048)
    return n / (time.perf_counter() - t)


def report_vocoder_speed(vocoder, out: dict) -> None:
    """vocoder_speed into out["vocoder_samples_per_s"], printed with its real-time factor."""
    rate = vocoder.frame_features.sample_rate
    out["vocoder_samples_per_s"] = vocoder_speed(vocoder)
    print(f"vocoder, one thread, fast path: {out['vocoder_samples_per_s']:,.0f} samples/s = "
          f"{out['vocoder_samples_per_s'] / rate:.1f}x real time at {rate / 1000:g} kHz")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(REPO / "assets" / "models" / "digits-pipeline"))
    p.add_argument("--baseline", default=str(REPO / "assets" / "models" / "wavenet-digits"),
                   help="an unconditioned WaveNet to compare held-out bits with")
    p.add_argument("--per-digit", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0,
                   help="generations use seeds FIRST .. FIRST + per-digit - 1 (choose settings on other seeds than "
                        "the reported 0-9)")
    p.add_argument("--copies", type=int, default=10, help="held-out clips per digit for copy-synthesis")
    p.add_argument("--eval-tokens", type=int, default=200_000)
    p.add_argument("--image", default=str(REPO / "docs" / "digits-pipeline-spectrograms.png"))
    p.add_argument("--json", default=None)
    p.add_argument("--vocoder", default=None,
                   help="judge with this vocoder checkpoint in place of the pipeline's own (same frames)")
    p.add_argument("--vocoder-temperature", type=float, default=None,
                   help="the vocoder's sampling temperature (default: the pipeline's own vocoder_temperature)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance of the plan (default: the pipeline's own; 1 = none)")
    p.add_argument("--phases", type=int, default=None,
                   help="frame phases the LM trained on (default: its training record's token_shifts)")
    p.add_argument("--only-generations", action="store_true", help="skip copy-synthesis, bits and speed")
    p.add_argument("--renderings", type=int, default=1,
                   help="play each plan this many times (vocoder seeds differ) and count plans named right in all")
    a = p.parse_args()
    if not FSDD.is_dir():
        print(f"skipped: {FSDD} is absent (set PLAYGROUND_DATA)")
        return 0
    torch.set_num_threads(1)
    t0 = time.time()
    out: dict = {"model": a.model}
    pipe = engine.load_model(a.model).eval()
    if a.vocoder:
        replacement = engine.load_model(a.vocoder).eval()
        if pipe.family == "pipeline":
            pipe.vocoder.load_state_dict(replacement.vocoder.state_dict() if replacement.family == "pipeline"
                                         else replacement.state_dict())
        else:
            pipe = replacement
    vocoder = pipe.vocoder if pipe.family == "pipeline" else pipe
    vtemp = a.vocoder_temperature
    if vtemp is None:
        vtemp = pipe.decode_options.get("vocoder_temperature", 1.0) if pipe.family == "pipeline" else 1.0
    out["vocoder_temperature"] = vtemp
    guidance = a.guidance
    if guidance is None:
        guidance = pipe.decode_options.get("guidance", 1.0) if pipe.family == "pipeline" else 1.0
    out["guidance"] = guidance

    data, _ = load_fsdd()
    clf, norm = train_classifier(data["train"])
    out["real_test_accuracy"] = float((predict(clf, norm, data["test"][0]) == data["test"][1]).float().mean())
    print(f"classifier on real test clips: {out['real_test_accuracy']:.1%}  [{time.time() - t0:.0f} s]")

    clips = test_clips(0 if a.only_generations else a.copies)
    mel = LogMel(vocoder.frame_features)
    copies, through_tokens, through_centroids, digits = [], [], [], []
    book = pipe.codebook if pipe.family == "pipeline" else None
    plain = None if book is None or book.decoder is None else FrameCodebook(book.centroids, book.mean, book.std)
    for d, waves in clips.items():
        for i, w in enumerate(waves):
            wave = torch.from_numpy(w)
            frames = mel(wave)
            copies.append(play(vocoder, frames, len(w), i, vtemp))
            if pipe.family == "pipeline":
                through_tokens.append(play(vocoder, book.decode(book.encode(frames)), len(w), i, vtemp))
                if plain is not None:  # the same tokens without the token decoder: what it adds
                    through_centroids.append(play(vocoder, plain.decode(plain.encode(frames)), len(w), i, vtemp))
            digits.append(d)
    digits_t = torch.tensor(digits)
    if copies:
        out["copy_synthesis_accuracy"] = float((classify(clf, norm, copies) == digits_t).float().mean())
        print(f"copy-synthesis of {len(copies)} held-out clips: {out['copy_synthesis_accuracy']:.1%}  "
              f"[{time.time() - t0:.0f} s]")
    if through_tokens:
        out["token_copy_accuracy"] = float((classify(clf, norm, through_tokens) == digits_t).float().mean())
        print(f"the same clips through the tokens: {out['token_copy_accuracy']:.1%}"
              + (" (with its token decoder)" if plain is not None else ""))
    if through_centroids:
        out["centroid_copy_accuracy"] = float((classify(clf, norm, through_centroids) == digits_t).float().mean())
        print(f"the same clips through the tokens' centroids (no token decoder): {out['centroid_copy_accuracy']:.1%}")

    shown_gen = {}
    if pipe.family == "pipeline" and pipe.config.n_classes == 10:
        out["lm_implicit_accuracy"] = lm_implicit_accuracy(pipe)
        print(f"the token LM's own classifier on the 300 held-out takes' tokens: {out['lm_implicit_accuracy']:.1%}")
    if pipe.family == "pipeline":
        lm_training = (engine.checkpoint.read_meta(a.model).get("training") or {}).get("lm") or {}
        phases = int(a.phases or lm_training.get("token_shifts")
                     or get_preset("rnn", "digit-tokens").train.get("token_shifts", 1))
        speeds = tuple(lm_training.get("token_speeds") or ())
        train_seqs = training_token_sequences(pipe, phases, speeds)
        gens, labels, exact, plans = [], [], 0, []
        t1 = time.time()
        samples = 0
        for d in range(10):
            for seed in range(a.first_seed, a.first_seed + a.per_digit):
                codes = pipe.plan_codes(d, temperature=1.0, seed=seed, guidance=guidance)
                exact += tuple(codes) in train_seqs
                ids = engine.generate_all(pipe, None, max_new_tokens=10 ** 6, temperature=1.0, cond=d, seed=seed,
                                          decode_options={"vocoder_temperature": vtemp, "guidance": guidance})
                wave = decode_audio(ids[0], pipe.tokens).numpy()
                samples += len(wave)
                gens.append(wave)
                labels.append(d)
                shown_gen.setdefault(d, wave)
                plans.append((codes, seed))
        pred = classify(clf, norm, gens)
        lab = torch.tensor(labels)
        out["generated_accuracy"] = float((pred == lab).float().mean())
        out["generated_per_digit"] = {d: float((pred[lab == d] == d).float().mean()) for d in range(10)}
        out["generated_exact_copies"] = exact
        out["generated_count"] = len(gens)
        out["generation_x_real_time"] = samples / RATE / (time.time() - t1)
        seeds = f"{a.first_seed}-{a.first_seed + a.per_digit - 1}"
        print(f"classifier on {len(gens)} generations (T=1, guidance {guidance}, seeds {seeds}): "
              f"{out['generated_accuracy']:.1%}; per digit "
              + " ".join(f"{d}:{v:.0%}" for d, v in out["generated_per_digit"].items())
              + f"; exact copies of a training token sequence ({phases} phases, speeds "
              f"{', '.join(map(str, (1.0, *speeds)))}): {exact}/{len(gens)}; "
              f"{out['generation_x_real_time']:.1f}x real time  [{time.time() - t0:.0f} s]")

        if a.renderings > 1:  # per plan: its own clip, then the replays (other vocoder seeds), all classified
            hop = pipe.frame_features.hop
            replays = [play(vocoder, pipe.codebook.decode(torch.tensor(codes)), len(codes) * hop, 1000 * r + seed,
                            vtemp) for codes, seed in plans for r in range(1, a.renderings)]
            again = classify(clf, norm, replays).view(len(gens), a.renderings - 1)
            right = torch.cat([pred.view(-1, 1), again], 1) == lab.view(-1, 1)
            out["renderings"] = a.renderings
            out["plans_right_in_all"] = int(right.all(1).sum())
            out["plans_wrong_in_all"] = int((~right).all(1).sum())
            out["renderings_accuracy"] = float(right.float().mean())
            print(f"each plan played {a.renderings} times: named right in all {out['plans_right_in_all']}, "
                  f"wrong in all {out['plans_wrong_in_all']}, mixed "
                  f"{len(gens) - out['plans_right_in_all'] - out['plans_wrong_in_all']}; all renderings "
                  f"{out['renderings_accuracy']:.1%}")

    if a.only_generations:
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=2))
        print(f"total {time.time() - t0:.0f} s")
        return 0
    for name, path in (("vocoder", a.vocoder or a.model), ("baseline", a.baseline)):
        res = evaluate_checkpoint(path, FSDD, "val", max_tokens=a.eval_tokens, trailing_silence=0.0)
        out[f"{name}_heldout_bits"] = res.bits
        print(f"held-out bits/sample, {name} ({path}): {res.bits:.4f} over {res.tokens} samples")
    report_vocoder_speed(vocoder, out)

    rows = {"real": {d: clips[d][0] for d in range(10)}, "copy": {d: copies[d * a.copies] for d in range(10)}}
    if shown_gen:
        rows["generated"] = shown_gen
    spectrogram_grid(rows, a.image, "FSDD held-out clips (first of each digit), their copy-synthesis by the vocoder, "
                                    "and a pipeline generation (temperature 1, seed 0)", RATE)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    print(f"image: {a.image}; total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

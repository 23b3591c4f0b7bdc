"""Generate tab handlers without a server: form, streaming, results, stop, and every kind of bad input."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from app_helpers import AUDIO_RATE, tiny_models  # noqa: F401  (fixture)

import engine
from app import catalog, generate
from app.errors import UserError
from app.generate import ChunkPolicy, GenerateRequest
from app.limits import Limits

LIMITS = Limits()


def run_all(req, limits=LIMITS, **kw):
    warnings: list[str] = []
    updates = list(generate.run(req, catalog.ModelCache(), limits, warn=warnings.append, **kw))
    return updates, warnings


def audio_req(models, **kw):
    base = dict(cond_class="3", seconds=0.6, seed=1)
    base.update(kw)
    return GenerateRequest(models["audio"], **base)


def text_req(models, **kw):
    base = dict(seed_text="Hello", tokens=40, seed=1)
    base.update(kw)
    return GenerateRequest(models["text"], **base)


# ---- picker and form -----------------------------------------------------------------------------------------
def test_choices_label_family_loss_and_owner(tiny_models):
    labels = dict((v, k) for k, v in catalog.choices())
    a = labels["models/tiny-digits"]  # values are names (the API page lists them), not server paths
    assert "wavenet" in a and "audio" in a and "5.432" in a and "yours" in a
    assert "bytenet" in labels["models/tiny-text"]
    assert not any(v.startswith("/") for v in labels)
    assert str(catalog.resolve("models/tiny-digits").path) == tiny_models["audio"]
    assert str(catalog.resolve(tiny_models["audio"]).path) == tiny_models["audio"]  # a folder still resolves


def test_form_for_audio_text_and_nothing(tiny_models):
    f = generate.form_for(tiny_models["audio"], LIMITS)
    assert f.kind == "audio" and f.classes == [str(i) for i in range(10)] and f.length.unit == "seconds"
    assert "synthetic test tones" in f.description and "CC0" in f.description and "1000 Hz" in f.description
    t = generate.form_for(tiny_models["text"], LIMITS)
    assert t.kind == "text" and t.classes == [] and t.length.unit == "tokens"
    assert generate.form_for(None, LIMITS).kind == ""
    assert "not in the model list" in generate.form_for("/etc", LIMITS).description


def test_resolve_refuses_paths_outside_the_model_list(tiny_models, tmp_path):
    with pytest.raises(UserError, match="not in the model list"):
        catalog.resolve(str(tmp_path))
    with pytest.raises(UserError, match="Pick a model"):
        catalog.resolve("")


# ---- streaming -----------------------------------------------------------------------------------------------
def test_audio_streams_int16_chunks_and_returns_requested_length(tiny_models):
    updates, warnings = run_all(audio_req(tiny_models, seconds=1.2, variations=2),
                                policy=ChunkPolicy(first_deadline=10.0))
    chunks = [u.audio for u in updates if u.audio is not None]
    assert len(chunks) >= 2
    assert updates[0].rate == AUDIO_RATE  # the first update: the live player gets ready for this rate
    for rate, data in chunks:
        assert rate == AUDIO_RATE and data.dtype == np.int16
    sizes = [len(d) for _, d in chunks]
    policy = ChunkPolicy()
    assert sizes[0] >= policy.first_seconds * AUDIO_RATE  # the first chunk: a little audio, early
    assert all(s >= policy.seconds * AUDIO_RATE for s in sizes[1:-1])  # then whole chunks; then the tail
    assert sum(sizes) == int(1.2 * AUDIO_RATE)
    res = updates[-1].result
    assert res is not None and not res.stopped and len(res.wav_paths) == 2
    for path in res.wav_paths:
        data, rate = sf.read(path)
        assert rate == AUDIO_RATE and len(data) == int(1.2 * AUDIO_RATE)
    assert res.audio[0] == AUDIO_RATE and len(res.audio[1]) == int(1.2 * AUDIO_RATE)
    assert np.array_equal(np.concatenate([d for _, d in chunks]), res.audio[1])  # the live copy is the clip
    assert res.figure is not None and not Path(res.figure.path).exists()  # drawn after the stream has ended
    assert generate.draw_figure(res.figure) == res.figure.path and Path(res.figure.path).stat().st_size > 0
    assert res.samples_per_s > 0 and "samples/s" in res.summary
    assert warnings == []


def test_first_audio_chunk_goes_out_at_the_deadline(tiny_models):
    updates, _ = run_all(audio_req(tiny_models, seconds=2.0), policy=ChunkPolicy(first_deadline=0.0,
                                                                               engine_chunk=16))
    first = next(u.audio for u in updates if u.audio is not None)
    assert first[0] == AUDIO_RATE and len(first[1]) == 16  # the first engine chunk, not half a second


def test_a_clip_made_before_its_first_chunk_was_due_still_reports_first_audio(tiny_models):
    updates, _ = run_all(audio_req(tiny_models, seconds=0.2), policy=ChunkPolicy(first_deadline=10.0))
    assert sum(u.audio is not None for u in updates) == 1  # sent whole, at the end
    res = updates[-1].result
    assert res.first_audio_s is not None and res.first_audio_s > 0 and "first audio after" in res.summary


def test_same_seed_same_audio_and_cond_changes_it(tiny_models):
    a = run_all(audio_req(tiny_models))[0][-1].result.audio[1]
    b = run_all(audio_req(tiny_models))[0][-1].result.audio[1]
    c = run_all(audio_req(tiny_models, cond_class="7"))[0][-1].result.audio[1]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_text_streams_growing_text(tiny_models):
    updates, _ = run_all(text_req(tiny_models, tokens=300), policy=ChunkPolicy(text_every=0.0, engine_chunk=20))
    texts = [u.text for u in updates if u.text is not None]
    assert len(texts) >= 5
    assert all(t.startswith("Hello") for t in texts)
    assert len(texts[-1]) > len(texts[1]) > 0
    res = updates[-1].result
    assert res.tokens == 300 and "tokens/s" in res.summary and res.wav_paths == []


def test_text_variations_are_labelled(tiny_models):
    res = run_all(text_req(tiny_models, variations=3))[0][-1].result
    assert res.text.count("variation") == 3 and res.tokens == 3 * 40


def test_stop_ends_early_with_partial_results(tiny_models):
    stop = threading.Event()
    gen = generate.run(audio_req(tiny_models, seconds=5.0), catalog.ModelCache(), LIMITS, stop=stop,
                       policy=ChunkPolicy(first_deadline=0.0, engine_chunk=32))
    for u in gen:
        if u.audio is not None:
            stop.set()
        last = u
    res = last.result
    assert res.stopped and "Stopped" in res.summary
    data, _ = sf.read(res.wav_paths[0])
    assert 0 < len(data) < 5 * AUDIO_RATE


# ---- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,message", [
    ("temperature", float("nan"), "Temperature must be a finite number"),
    ("temperature", -1, "Temperature must be a finite number >= 0"),
    ("temperature", "hot", "Temperature must be a number"),
    ("top_p", 0, "top_p must be in"),
    ("top_k", 2.5, "Top-k must be a whole number"),
    ("tokens", 10**9, "at most 2000 tokens"),
    ("tokens", 0, "more than 0"),
    ("variations", 99, "Variations must be a whole number from 1 to 4"),
    ("seed", -5, "Seed must be a whole number"),
])
def test_bad_numbers_get_clear_messages(tiny_models, field, value, message):
    with pytest.raises(UserError, match=message):
        run_all(text_req(tiny_models, **{field: value}))


def test_audio_length_cap_and_missing_class(tiny_models):
    with pytest.raises(UserError, match="at most 5 seconds"):
        run_all(audio_req(tiny_models, seconds=60))
    with pytest.raises(UserError, match="pick one of 0, 1"):
        run_all(audio_req(tiny_models, cond_class=None))
    with pytest.raises(UserError, match="pick one of"):
        run_all(audio_req(tiny_models, cond_class="eleven"))


def test_per_model_cap_from_meta(tiny_models):
    import engine
    m = engine.load_model(tiny_models["text"])
    engine.save_model(m, tiny_models["text"], max_generate_tokens=50)
    with pytest.raises(UserError, match="at most 50 tokens"):
        run_all(text_req(tiny_models, tokens=60))


def test_huge_and_odd_seed_text(tiny_models):
    updates, warnings = run_all(text_req(tiny_models, seed_text="ab" * 5000 + "\ud800end", tokens=5),
                                limits=Limits(max_seed_chars=100))
    assert any("only its last 100" in w for w in warnings)
    assert updates[-1].result.text.startswith(("ab", "b"))
    assert "end" in updates[-1].result.text
    with pytest.raises(UserError, match="Seed text must be text"):
        run_all(text_req(tiny_models, seed_text=b"\xff\xfe"))


def write(path, data, rate, **kw):
    sf.write(str(path), data, rate, **kw)
    return str(path)


def test_audio_prompts_odd_but_usable(tiny_models, tmp_path):
    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    tone = 0.5 * np.sin(2 * np.pi * 100 * t)
    cases = {
        "silent": (write(tmp_path / "silent.wav", np.zeros(800), 8000), "silent"),
        "low_rate": (write(tmp_path / "low.wav", 0.5 * np.sin(2 * np.pi * 50 * np.arange(500) / 500), 500),
                     "recorded at 500 Hz"),
        "stereo_44k": (write(tmp_path / "stereo.flac", np.stack([tone, tone], 1).repeat(44, 0)[:44100 // 4], 44100),
                       None),
        "long": (write(tmp_path / "long.wav", np.tile(tone, 3), AUDIO_RATE), "only its last 1 s"),
    }
    for name, (path, expect) in cases.items():
        updates, warnings = run_all(audio_req(tiny_models, prompt_audio=path, seconds=0.2),
                                    limits=Limits(max_prompt_seconds=1.0))
        assert updates[-1].result.wav_paths, name
        if expect:
            assert any(expect in w for w in warnings), (name, warnings)
        else:
            assert warnings == [], (name, warnings)


def test_one_second_at_1khz_prompt(tiny_models, tmp_path):
    """A 1 s clip recorded at 1 kHz (a 1 kHz tone at 1 kHz rate is all zeros: silence) is accepted with a note."""
    path = write(tmp_path / "1k.wav", np.sin(2 * np.pi * 1000 * np.arange(1000) / 1000), 1000)
    updates, warnings = run_all(audio_req(tiny_models, prompt_audio=path, seconds=0.2))
    assert updates[-1].result.wav_paths
    assert any("silent" in w for w in warnings)


def test_audio_prompts_unusable(tiny_models, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio at all")
    for path, message in [(empty, "empty"), (corrupt, "cannot read"), (text, "cannot read"),
                          (tmp_path / "missing.wav", "not found")]:
        with pytest.raises(UserError, match=f"Audio prompt: .*{message}"):
            run_all(audio_req(tiny_models, prompt_audio=str(path)))


def test_inputs_of_the_other_kind_are_ignored(tiny_models, tmp_path):
    """The hidden box of the other kind keeps its value; it must neither fail nor nag."""
    path = write(tmp_path / "p.wav", np.zeros(100), AUDIO_RATE)
    updates, warnings = run_all(text_req(tiny_models, prompt_audio=path, tokens=3))
    assert warnings == [] and updates[-1].result.text.startswith("Hello")
    updates, warnings = run_all(audio_req(tiny_models, seed_text="hi", seconds=0.1))
    assert warnings == [] and updates[-1].result.wav_paths


def test_warm_up_and_chunk_policy_env(tiny_models, monkeypatch):
    cache = catalog.ModelCache()
    warmed = generate.warm_up(cache, limit=len(catalog.list_infos()))  # every listed model, shipped ones too
    assert {"tiny-digits", "tiny-text"} <= set(warmed)
    monkeypatch.setenv("PLAYGROUND_FIRST_CHUNK_SECONDS", "0.4")
    monkeypatch.setenv("PLAYGROUND_FIRST_CHUNK_DEADLINE", "0.3")
    policy = generate.ChunkPolicy.from_env()
    assert (policy.first_seconds, policy.first_deadline, policy.seconds) == (0.4, 0.3, 0.5)


def test_default_pick_prefers_the_named_demo(tiny_models, monkeypatch):
    values = catalog.choices()
    monkeypatch.setenv("PLAYGROUND_DEFAULT_MODEL", "tiny-text")
    assert catalog.default_choice(values) == "models/tiny-text"
    monkeypatch.setenv("PLAYGROUND_DEFAULT_MODEL", "not-there")
    assert catalog.default_choice(values) == values[0][1]
    assert catalog.default_choice([]) is None


def test_seq2seq_takes_the_text_box_as_its_source(tiny_models, tmp_path):
    import engine
    from engine.paths import user_models_dir
    s2s = engine.build_model("seq2seq", encoder="bytenet", decoder="rnn", attention="additive", d=8, enc_sets=1,
                             cell="gru", hidden_size=8)
    path = str(engine.save_model(s2s, user_models_dir() / "tiny-s2s", data="untrained (test)"))
    assert generate.form_for(path, LIMITS).source and not generate.form_for(tiny_models["text"], LIMITS).source
    res = run_all(GenerateRequest(path, seed_text="3 March 2021", tokens=12, seed=0))[0][-1].result
    assert res.tokens >= 1 and "3 March" not in res.text  # the output is the rewrite, not a continuation
    with pytest.raises(UserError, match="type one in the text box"):
        run_all(GenerateRequest(path, seed_text="  ", tokens=5))


def test_alphabet_model_says_what_it_left_out_of_the_seed(tiny_models):
    import engine
    from engine.paths import user_models_dir
    names = engine.build_model("hierarchical", n_embd=4, levels=2, widths=[8], eos_id=10,
                               alphabet=[10, *range(97, 123)])
    path = str(engine.save_model(names, user_models_dir() / "tiny-names", data="untrained (test)"))
    updates, warnings = run_all(GenerateRequest(path, seed_text="Emma", tokens=8, seed=0, variations=2))
    assert any("newline, a-z" in w and "'E'" in w for w in warnings), warnings
    res = updates[-1].result
    rows = [r for r in res.text.split("\n") if r and "variation" not in r]
    assert len(rows) == 2 and all(r.startswith("mma") for r in rows), res.text
    updates, warnings = run_all(GenerateRequest(path, seed_text="ÉÈ", tokens=8, seed=0))  # nothing left: no seed
    assert warnings and updates[-1].result.tokens >= 1


def test_beam_search_on_the_shipped_date_model(tiny_models):
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "assets" / "models" / "seq2seq-dates"
    if not path.is_dir():
        pytest.skip("no shipped seq2seq-dates")
    updates, warnings = run_all(GenerateRequest(str(path), seed_text="3 March 2021", tokens=20, seed=0,
                                                beam_width=4, variations=3))
    res = updates[-1].result
    assert res.text.strip() == "2021-03-03" and "beam width 4" in res.summary
    assert any("one variation" in w for w in warnings)


def test_a_pre_emphasis_model_streams_the_clip_it_saves_and_joins_its_prompt(tiny_models, tmp_path):
    """A model whose ids are of the pre-emphasized waveform (engine.audio.encode_audio): the live chunks, decoded
    one by one, are the saved clip, and the clip continues the prompt's waveform (decoded from the prompt's last
    sample, not from zero)."""
    torch.manual_seed(0)
    wn = engine.build_model("wavenet", layers_per_block=3, blocks=1, residual_channels=8, gate_channels=8,
                            skip_channels=8, sample_rate=AUDIO_RATE, preemphasis=0.85)
    path = engine.save_model(wn, Path(tiny_models["audio"]).parent / "tiny-pe", data="synthetic", license="CC0")
    tone = 0.5 * np.sin(2 * np.pi * 30 * np.arange(AUDIO_RATE) / AUDIO_RATE)
    prompt_path = write(tmp_path / "prompt.wav", tone, AUDIO_RATE, subtype="FLOAT")
    updates, warnings = run_all(GenerateRequest(str(path), prompt_audio=prompt_path, seconds=1.2, seed=4),
                                policy=ChunkPolicy(first_deadline=10.0))
    assert warnings == []
    chunks = [d for _, d in (u.audio for u in updates if u.audio is not None)]
    res = updates[-1].result
    assert len(chunks) >= 2 and np.array_equal(np.concatenate(chunks), res.audio[1])
    saved, _ = sf.read(res.wav_paths[0], dtype="float32")
    prompt_ids = engine.audio.encode_audio(torch.from_numpy(tone.astype(np.float32)), wn.tokens)
    ids = engine.generate_all(wn, prompt_ids, max_new_tokens=len(saved), seed=4)[0]
    expected = engine.audio.decode_audio(torch.cat([prompt_ids, ids]), wn.tokens)[len(prompt_ids):]
    assert np.abs(saved - expected.numpy()).max() < 2 / 32768  # the same waveform, written as 16-bit

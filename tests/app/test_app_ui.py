"""The UI's event handlers called directly (no server): what each returns for the components it updates."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from app_helpers import tiny_models  # noqa: F401  (fixture)

from app import live_player
from app.limits import Limits
from app.ui import App, build_app


@pytest.fixture
def ui(tiny_models):
    app = App(Limits())
    app.build()
    return app, tiny_models


def test_build_has_three_tabs_and_named_events(tiny_models):
    demo, app = build_app(Limits())
    config = demo.get_config_file()
    labels = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert labels == ["Generate", "Train", "Speed"]
    names = {d.get("api_name") for d in config["dependencies"]}
    assert {"generate", "stop", "model_form", "refresh_models", "speed"} <= names


def test_on_model_switches_the_form(ui):
    app, models = ui
    info, seed_text, prompt, cond, seconds, tokens, live, text_out, full, files, image, beam, averaging = \
        app.on_model(models["audio"])
    assert not beam["visible"] and not averaging["visible"]
    assert "wavenet" in info and prompt["visible"] and not seed_text["visible"]
    assert cond["visible"] and cond["choices"] == [str(i) for i in range(10)] and cond["value"] == "0"
    assert seconds["visible"] and not tokens["visible"] and live["visible"] and not text_out["visible"]
    assert full["visible"] and files["visible"] and image["visible"]
    info, seed_text, prompt, cond, seconds, tokens, live, text_out, full, files, image, beam, averaging = \
        app.on_model(models["text"])
    assert not (full["visible"] or files["visible"] or image["visible"] or live["visible"])
    assert seed_text["visible"] and not prompt["visible"] and not cond["visible"]
    assert tokens["visible"] and tokens["value"] == 400 and not seconds["visible"] and text_out["visible"]


def test_on_load_and_picker(ui):
    app, models = ui
    picker, *form = app.on_load(None)
    assert picker["value"] in [c[1] for c in picker["choices"]] and len(form) == 13  # shipped models may lead
    assert app.picker(models["text"])["value"] == "models/tiny-text"  # a valid pick is kept (by name)
    assert app.picker("models/tiny-text")["value"] == "models/tiny-text"
    assert app.picker("/gone")["value"] != "/gone"


def test_on_generate_clears_then_streams_then_finishes(ui):
    app, models = ui
    outs = list(app.on_generate(models["audio"], "", None, "5", 1.0, 0, 1.0, 0.6, 10, 2, 1))
    assert outs[0][3] is None  # the previous results are cleared
    live = [live_player.decode(o[0]) for o in outs if isinstance(o[0], str)]
    assert live[0] == {"run": live[0]["run"], "seq": 1, "rate": 1000}  # the player gets ready for the rate
    chunks = [m["samples"] for m in live if "samples" in m]
    assert chunks and all(c.dtype.name == "int16" for c in chunks) and live[-1]["end"] is True
    final = outs[-1]
    assert np.array_equal(np.concatenate(chunks), final[3][1])  # the live player heard the whole clip
    again = app.on_generate(models["audio"], "", None, "5", 1.0, 0, 1.0, 0.6, 10, 2, 1)
    assert live_player.decode(next(again)[0])["run"] != live[0]["run"]  # a new run: the player drops the old one's
    again.close()
    assert final[3][0] == 1000 and len(final[3][1]) == 600 and len(final[4]) == 1 and final[5] == gr.skip()
    assert app.on_figure(final[7]).endswith(".png")  # drawn by the follow-up event, after the stream has ended
    assert app.on_figure(None) == gr.skip()


def test_on_generate_bad_input_is_a_gradio_error(ui):
    app, models = ui
    with pytest.raises(gr.Error, match="finite"):
        list(app.on_generate(models["text"], "hi", None, None, float("nan"), 0, 1.0, 1, 10, 2, 1))
    with pytest.raises(gr.Error, match="&lt;b&gt;"):  # messages are escaped: a file name cannot inject HTML
        list(app.on_generate(models["audio"], "", "/tmp/<b>.wav", "1", 1.0, 0, 1.0, 1, 10, 2, 1))


def test_on_speed_yields_plot_frames(ui):
    app, _ = ui
    outs = list(app.on_speed(1, 2, 3))
    figure, table, status = outs[-1]
    ax = figure.axes[0]
    assert ax.get_yscale() == "log"  # the compiled line is orders of magnitude below naive: not flat on zero
    assert [t for t in ax.get_xticks() if 1 <= t <= 2] == [1.0, 2.0]  # whole layers only
    assert {line.get_label() for line in ax.lines} >= {"naive", "cached"}
    assert app.speed_plot.postprocess(figure) is not None  # Gradio can send it
    assert table[0][0] == 1 and "naive ÷ cached" in status
    app.on_stop()  # nothing running: a no-op


def test_train_tick_without_jobs_and_bad_start(ui):
    app, models = ui
    table, job, status, progress, curve, val_curve, log, picker, seen, *samples = \
        app.on_train_tick(None, models["text"], None)
    assert table == [] and job["value"] is None and "No job selected" in status and "0%" in progress
    assert curve is None and val_curve is None  # nothing to draw yet (an empty frame would break the plot)
    assert picker["value"] == "models/tiny-text"
    assert {"models/tiny-digits", "models/tiny-text"} <= {c[1] for c in picker["choices"]}
    again = app.on_train_tick(None, models["text"], seen)
    assert again[7] == gr.skip()  # nothing changed: the picker is left alone (no flicker while choosing)
    with pytest.raises(gr.Error, match="Upload some data first"):
        app.on_train_start([], "Detect from the files", "bytenet", "small", 1, None, "")
    with pytest.raises(gr.Error, match="Pick a job"):
        app.on_train_stop(None)


def test_decode_controls_follow_the_model(ui):
    """Beam width shows for sequence-to-sequence models, hidden-state averaging for RNN decoders."""
    import engine
    from engine.paths import user_models_dir
    app, _ = ui
    rnn = engine.build_model("rnn", cell="gru", hidden_size=8, embed_size=4, averaging_influence=0.3)
    s2s = engine.build_model("seq2seq", encoder="bytenet", decoder="rnn", attention="additive", d=8, enc_sets=1,
                             cell="gru", hidden_size=8)
    rnn_path = str(engine.save_model(rnn, user_models_dir() / "tiny-avg-rnn", data="untrained (test)"))
    s2s_path = str(engine.save_model(s2s, user_models_dir() / "tiny-beam-s2s", data="untrained (test)"))
    *_, beam, averaging = app.on_model(rnn_path)
    assert not beam["visible"] and averaging["visible"] and averaging["value"] == 0.3
    *_, beam, averaging = app.on_model(s2s_path)
    assert beam["visible"] and averaging["visible"]
    # averaging changes what an RNN writes; the same settings give the same text
    texts = {}
    for influence in (0.0, 0.9, 0.9):
        outs = list(app.on_generate(rnn_path, "ab", None, None, 1.0, 0, 1.0, 0.6, 40, 5, 1, 1, influence))
        texts.setdefault(influence, []).append(outs[-1][1])
    assert texts[0.9][0] == texts[0.9][1] != texts[0.0][0]
    outs = list(app.on_generate(s2s_path, "3 March", None, None, 1.0, 0, 1.0, 0.6, 12, 5, 1, 4, 0.0))
    assert "beam width 4" in outs[-1][2]

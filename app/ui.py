"""The Gradio layout and its wiring; every event calls a plain function from generate / speed / train / catalog.

Errors a user can fix arrive here as UserError and leave as gr.Error (a red toast; the app keeps serving);
warnings go to gr.Warning.  Nothing here touches a model directly.
"""
from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from . import catalog, generate, speed
from .errors import UserError
from .limits import Limits
from .stop import StopSwitch

INTRO = """# Autoregressive Playground
Pick a model, press **Generate**, and listen to the audio or read the text while it is being made.
Audio models can continue an audio prompt (upload or record one); text models continue your seed text.
Train your own model in the **Train** tab; see why cached generation is fast in the **Speed** tab."""


def _warn(message: str) -> None:
    gr.Warning(html.escape(message))


def _key(request: gr.Request | None, scope: str) -> str:
    return f"{scope}:{getattr(request, 'session_hash', None) or 'anonymous'}"


class App:
    """Holds the shared state (model cache, stop switches, limits) the event handlers use."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits.from_env()
        self.cache = catalog.ModelCache()
        self.stops = StopSwitch()

    # ---- Generate tab ----------------------------------------------------------------------------------------
    def picker(self, current: str | None = None):
        values = catalog.choices()
        paths = [v for _, v in values]
        value = current if current in paths else catalog.default_choice(values)
        return gr.update(choices=values, value=value)

    def on_load(self, current: str | None):
        """Page open: a fresh model list (models trained since start-up appear) and the form for the pick."""
        picker = self.picker(current)
        return (picker, *self.on_model(picker["value"]))

    def on_model(self, path: str | None):
        form = generate.form_for(path, self.limits)
        cap = form.length
        audio, text = form.kind == "audio", form.kind == "text"
        def length(unit: str):
            if cap is None or cap.unit != unit:
                return gr.update(visible=False)
            return gr.update(visible=True, value=cap.default, label=f"Length ({unit}, at most {cap.maximum:g})")

        return (form.description,
                gr.update(visible=text),
                gr.update(visible=audio),
                gr.update(visible=bool(form.classes), choices=form.classes,
                          value=form.classes[0] if form.classes else None),
                length("seconds"),
                length("tokens"),
                gr.update(visible=audio),
                gr.update(visible=text))

    def on_generate(self, model, seed_text, prompt_audio, cond_class, temperature, top_k, top_p, seconds, tokens,
                    seed, variations, request: gr.Request = None):
        key = _key(request, "generate")
        event = self.stops.arm(key)
        req = generate.GenerateRequest(model, seed_text, prompt_audio, cond_class, temperature, top_k, top_p,
                                       seconds, tokens, seed, variations)
        skip = gr.skip()
        try:
            first = True
            for u in generate.run(req, self.cache, self.limits, warn=_warn, stop=event):
                if first:  # clear the previous run's results
                    first = False
                    yield (None, u.text if u.text is not None else "", u.status, None, None, None)
                    continue
                r = u.result
                yield (u.audio if u.audio is not None else skip,
                       u.text if u.text is not None else skip,
                       u.status,
                       r.audio if r else skip,  # (rate, int16): a path would make Gradio run ffprobe
                       (r.wav_paths or None) if r else skip,
                       r.image_path if r else skip)
        except UserError as e:
            raise gr.Error(html.escape(str(e)), print_exception=False) from None
        finally:
            self.stops.release(key, event)

    def on_stop(self, request: gr.Request = None):
        self.stops.stop(_key(request, "generate"))
        self.stops.stop(_key(request, "speed"))

    # ---- Speed tab -------------------------------------------------------------------------------------------
    def on_speed(self, l_min, l_max, samples, request: gr.Request = None):
        key = _key(request, "speed")
        event = self.stops.arm(key)
        try:
            for rows, status in speed.run(l_min, l_max, samples, self.limits, stop=event):
                frame = pd.DataFrame([{"layers": r.layers, "ms per sample": r.ms_per_sample, "method": r.method}
                                      for r in rows], columns=["layers", "ms per sample", "method"])
                yield frame, speed.table(rows), status
        except UserError as e:
            raise gr.Error(html.escape(str(e)), print_exception=False) from None
        finally:
            self.stops.release(key, event)

    # ---- layout ----------------------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        values = catalog.choices()
        start = catalog.default_choice(values)
        with gr.Blocks(title="Autoregressive Playground", analytics_enabled=False) as demo:
            gr.Markdown(INTRO)
            with gr.Tabs():
                with gr.Tab("Generate", id="generate"):
                    self._generate_tab(values, start)
                with gr.Tab("Train", id="train"):
                    self._train_tab()
                with gr.Tab("Speed", id="speed"):
                    self._speed_tab()
            demo.load(self.on_load, [self.model], [self.model, *self._form_outputs], api_visibility="private")
        self.demo = demo
        return demo

    def _generate_tab(self, values, start):
        lim = self.limits
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                with gr.Row():
                    self.model = gr.Dropdown(values, value=start, label="Model", scale=8, elem_id="model-picker",
                                             allow_custom_value=True)  # the list grows as models are trained
                    refresh = gr.Button("↻", scale=1, min_width=40, size="sm")
                info = gr.Markdown(elem_id="model-info")
                seed_text = gr.Textbox(label="Seed text (the model continues it; may be empty)", lines=3,
                                       max_length=None, elem_id="seed-text")
                prompt_audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                        label="Audio prompt (optional: upload or record; the model continues it)",
                                        elem_id="prompt-audio")
                cond = gr.Dropdown([], label="Class (e.g. which digit to say)", elem_id="cond-class",
                                   allow_custom_value=True)  # choices follow the model; checked in the handler
                seconds = gr.Slider(0.1, lim.audio_seconds, value=min(2.0, lim.audio_seconds), step=0.1,
                                    label="Length (seconds)", elem_id="length-seconds")
                tokens = gr.Slider(1, lim.text_tokens, value=min(400, lim.text_tokens), step=1,
                                   label="Length (tokens)", elem_id="length-tokens", visible=False)
                with gr.Accordion("Sampling", open=False):
                    temperature = gr.Slider(0, 2, value=1.0, step=0.05,
                                            label="Temperature (0 = always the most likely token)")
                    top_k = gr.Number(0, precision=0, minimum=0, label="Top-k (0 = off)")
                    top_p = gr.Slider(0.01, 1.0, value=1.0, step=0.01, label="Top-p (1 = off)")
                    seed = gr.Number(None, precision=0, label="Seed (empty = random; shown after each run)")
                    variations = gr.Slider(1, lim.max_variations, value=1, step=1,
                                           label="Variations (generated together)")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop-btn")
            with gr.Column(scale=3, min_width=320):
                status = gr.Markdown("Press **Generate**.", elem_id="status")
                live = gr.Audio(streaming=True, autoplay=True, label="Live audio (variation 1)",
                                elem_id="live-audio", visible=True)
                text_out = gr.Textbox(label="Generated text", lines=14, elem_id="text-out", buttons=["copy"])
                full = gr.Audio(type="numpy", format="wav", label="Full audio (variation 1; download button at the top right)",
                                elem_id="full-audio", interactive=False)
                files = gr.File(label="All variations (wav)", file_count="multiple", elem_id="wav-files",
                                interactive=False)
                image = gr.Image(type="filepath", label="Waveform and spectrogram", elem_id="plot",
                                 interactive=False)
        form_outputs = [info, seed_text, prompt_audio, cond, seconds, tokens, live, text_out]
        self.model.change(self.on_model, [self.model], form_outputs, api_name="model_form")
        refresh.click(self.picker, [self.model], [self.model], api_name="refresh_models")
        gen_event = go.click(self.on_generate,
                             [self.model, seed_text, prompt_audio, cond, temperature, top_k, top_p, seconds, tokens,
                              seed, variations],
                             [live, text_out, status, full, files, image], api_name="generate",
                             concurrency_limit=1, concurrency_id="cpu")
        stop.click(self.on_stop, None, None, api_name="stop", queue=False)
        self._gen_event = gen_event
        self._form_outputs = form_outputs

    def _train_tab(self):
        gr.Markdown("Training from the app arrives with `trainers.jobs`.")

    def _speed_tab(self):
        lim = self.limits
        gr.Markdown("The Fast WaveNet experiment on this machine: a random WaveNet with 2 blocks of L layers "
                    "generates after a prompt that fills its receptive field. **Naive** recomputes the whole "
                    "receptive field for every sample (cost doubles with each layer); **cached** keeps a queue "
                    "per layer (cost grows by one layer's work).")
        with gr.Row():
            lo = gr.Slider(1, lim.speed_max_layers, value=2, step=1, label="L from")
            hi = gr.Slider(1, lim.speed_max_layers, value=min(10, lim.speed_max_layers), step=1, label="L to")
            n = gr.Slider(2, lim.speed_tokens, value=min(50, lim.speed_tokens), step=1,
                          label="Samples timed per point")
        with gr.Row():
            run = gr.Button("Run", variant="primary", elem_id="speed-run")
            stop = gr.Button("Stop", variant="stop")
        status = gr.Markdown()
        plot = gr.LinePlot(pd.DataFrame({"layers": [], "ms per sample": [], "method": []}), x="layers",
                           y="ms per sample", color="method", title="Time per sample vs layers per block",
                           x_title="layers per block (2 blocks)", y_title="ms per sample", height=360,
                           elem_id="speed-plot")
        table = gr.Dataframe(headers=["L", "receptive field", "naive ms", "cached ms", "naive ÷ cached"],
                             interactive=False, elem_id="speed-table")
        run.click(self.on_speed, [lo, hi, n], [plot, table, status], api_name="speed",
                  concurrency_limit=1, concurrency_id="cpu")
        stop.click(self.on_stop, None, None, api_name="stop_speed", queue=False)


def build_app(limits: Limits | None = None) -> tuple[gr.Blocks, App]:
    app = App(limits)
    return app.build(), app

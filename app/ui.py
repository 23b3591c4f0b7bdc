"""The Gradio layout and its wiring; every event calls a plain function from generate / speed / train / catalog.

Errors a user can fix arrive here as UserError and leave as gr.Error (a red toast; the app keeps serving);
warnings go to gr.Warning.  Nothing here touches a model directly.
"""
from __future__ import annotations

import html
import uuid

import gradio as gr
import pandas as pd
import soundfile as sf

from trainers.jobs import JobManager

from . import catalog, generate, live_player, plots, speed, train
from .errors import UserError
from .limits import Limits
from .stop import StopSwitch

INTRO = """# Autoregressive Playground
Pick a model, press **Generate**, and listen to the audio or read the text while it is being made.
Audio models can continue an audio prompt (upload or record one); text models continue your seed text.
Train your own model in the **Train** tab; see why cached generation is fast in the **Speed** tab."""


TRAIN_PLOT = {"step": "int64", "loss": "float64"}


def _frame(rows: list[dict], spec: dict[str, str]) -> pd.DataFrame | None:
    """A plot's DataFrame with fixed dtypes, or None while there is nothing to draw: a LinePlot that was ever
    given an empty frame draws no lines for any later data in Gradio 6.31's browser code (seen in screenshots
    and reproduced with a three-line app), while one that starts from None does."""
    if not rows:
        return None
    return pd.DataFrame(rows, columns=list(spec)).astype(spec)


def _warn(message: str) -> None:
    gr.Warning(html.escape(message))


def _key(request: gr.Request | None, scope: str) -> str:
    return f"{scope}:{getattr(request, 'session_hash', None) or 'anonymous'}"


STOP_SCOPES = {"generate": "generate", "speed": "speed"}  # a Stop switch's scope -> the api_name of the run it stops


def queued_requests(demo: gr.Blocks | None, key: str) -> int:
    """How many requests of `key` ("<scope>:<session hash>") wait in the demo's queue, not yet started.

    Gradio 6 keeps the queued and running events in `Blocks._queue` (event_ids_to_events, active_jobs); that is
    read here, and nowhere else, so a Stop pressed while the run waits for the CPU is not lost (the server test
    checks it against the installed Gradio)."""
    scope, _, session = key.partition(":")
    api_name = STOP_SCOPES.get(scope)
    queue = getattr(demo, "_queue", None)
    if queue is None or api_name is None:
        return 0
    running = {id(e) for job in list(queue.active_jobs) if job for e in job}
    return sum(1 for e in list(queue.event_ids_to_events.values())
               if e.session_hash == session and getattr(e.fn, "api_name", None) == api_name
               and id(e) not in running)


def _kept(current, values: list[tuple[str, str]]) -> str | None:
    """The picker's value after a refresh: the current pick if it is still listed (given by name, or by folder
    as older clients do), else the default."""
    names = [v for _, v in values]
    if current in names:
        return current
    if isinstance(current, str) and current:
        try:
            value = catalog.value_of(catalog.resolve(current))
        except UserError:
            value = None
        if value in names:
            return value
    return catalog.default_choice(values)


def _playable(path: str | None):
    """A wav as (rate, int16) for gr.Audio: given a path, Gradio 6 runs ffprobe on it, which is not shipped."""
    if not path:
        return None
    try:
        data, rate = sf.read(path, dtype="int16", always_2d=True)
    except Exception:  # removed or being rewritten: the next tick shows it
        return None
    return rate, data[:, 0]


def seed_note(seed: int | None) -> str:
    """The line under the Seed box: which seed the last run used, so it can be typed in to repeat that run."""
    if seed is None:
        return "The seed of each run is shown here."
    return f"Last run: seed **{seed}** (type it in the box to repeat that run)."


class App:
    """Holds the shared state (model cache, stop switches, limits) the event handlers use."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits.from_env()
        self.cache = catalog.ModelCache()
        self.demo: gr.Blocks | None = None
        self.stops = StopSwitch(waiting=lambda key: queued_requests(self.demo, key))
        self.policy = generate.ChunkPolicy.from_env()
        # the runs root (PLAYGROUND_HOME/runs) holds the job table; PLAYGROUND_MAX_JOBS jobs train at once
        self.jobs = JobManager(max_concurrent=self.limits.max_jobs)

    def warm_up(self) -> None:
        """Load and run the first models once (in a background thread at start-up)."""
        generate.warm_up(self.cache)

    # ---- Generate tab ----------------------------------------------------------------------------------------
    def picker(self, current: str | None = None):
        values = catalog.choices()
        return gr.update(choices=values, value=_kept(current, values))

    def on_load(self, current: str | None):
        """Page open: a fresh model list (models trained since start-up appear) and the form for the pick."""
        picker = self.picker(current)
        return (picker, *self.on_model(picker["value"]))

    def on_model(self, path: str | None):
        form = generate.form_for(path, self.limits, self.cache)
        cap = form.length
        audio, text = form.kind == "audio", form.kind == "text"
        def length(unit: str):
            if cap is None or cap.unit != unit:
                return gr.update(visible=False)
            return gr.update(visible=True, value=cap.default, label=f"Length ({unit}, at most {cap.maximum:g})")

        seed_label = ("Source text (the model rewrites it into its output)" if form.source
                      else "Seed text (the model continues it; may be empty)")
        return (form.description,
                gr.update(visible=text, label=seed_label),
                gr.update(visible=audio),
                gr.update(visible=bool(form.classes), choices=form.classes,
                          value=form.classes[0] if form.classes else None),
                length("seconds"),
                length("tokens"),
                gr.update(visible=audio),  # live player
                gr.update(visible=text),  # text box
                gr.update(visible=audio),  # full audio
                gr.update(visible=audio),  # wav files
                gr.update(visible=audio),  # plot
                gr.update(visible=form.source, value=1),  # beam width
                gr.update(visible=form.averaging is not None, value=form.averaging or 0.0))  # averaging

    def on_generate(self, model, seed_text, prompt_audio, cond_class, temperature, top_k, top_p, seconds, tokens,
                    seed, variations, beam_width=1, averaging=None, request: gr.Request = None):
        key = _key(request, "generate")
        event = self.stops.arm(key)
        req = generate.GenerateRequest(model, seed_text, prompt_audio, cond_class, temperature, top_k, top_p,
                                       seconds, tokens, seed, variations, beam_width, averaging)
        skip = gr.skip()
        live = live_player.Messages(uuid.uuid4().hex)
        try:
            first = True
            for u in generate.run(req, self.cache, self.limits, warn=_warn, stop=event, policy=self.policy):
                if first:  # clear the previous run's results; the live player stops the last run's audio
                    first = False
                    yield (live.start(u.rate) if u.rate else skip, u.text if u.text is not None else "", u.status,
                           None, None, None, seed_note(u.seed), None)
                    continue
                r = u.result
                if u.audio is not None:
                    sound = live.chunk(*u.audio)
                else:  # the result: the player hears that nothing more comes (audio models only)
                    sound = live.end() if r is not None and live.seq else skip
                yield (sound,
                       u.text if u.text is not None else skip,
                       u.status,
                       r.audio if r else skip,  # (rate, int16): a path would make Gradio run ffprobe
                       (r.wav_paths or None) if r else skip,
                       skip,  # the image is drawn by `on_figure` once this event (and the live stream) has ended
                       skip,
                       r.figure if r else skip)
        except UserError as e:
            raise gr.Error(html.escape(str(e)), print_exception=False) from None
        finally:
            self.stops.release(key, event)

    def on_figure(self, figure: generate.Figure | None):
        """The waveform + spectrogram of the run that just ended (None: nothing to draw)."""
        return generate.draw_figure(figure) if isinstance(figure, generate.Figure) else gr.skip()

    def on_stop(self, request: gr.Request = None):
        """The Generate tab's Stop: this session's generation only (running, or still waiting in the queue)."""
        self.stops.stop(_key(request, "generate"))

    def on_stop_speed(self, request: gr.Request = None):
        """The Speed tab's Stop: this session's timing run only."""
        self.stops.stop(_key(request, "speed"))

    # ---- Train tab -------------------------------------------------------------------------------------------
    def on_train_start(self, files, kind, family, preset, minutes, max_steps, name):
        try:
            job_id = train.start_job(self.jobs, files, kind, family, preset, minutes, max_steps, name, self.limits,
                                     warn=_warn)
        except UserError as e:
            raise gr.Error(html.escape(str(e)), print_exception=False) from None
        gr.Info(f"Started {job_id}")
        return self.on_train_tick(job_id, None, None, train.LATEST, force=True)

    def on_train_files(self, files, kind, family):
        """New uploads: the model family follows the data (text data -> a text family, audio -> an audio one)."""
        best, note = train.suggested_family(files, kind, family)
        return gr.update(value=best) if best and best != family else gr.skip(), note

    def on_train_tick(self, job_id, picked, seen, sample_pick=train.LATEST, force: bool = False):
        """Every 2 s: the job table, the picked job's view and samples, and the Generate picker when models
        changed.  `seen` is what the last tick showed: the picker and the sample player are only updated when
        what they show changed (a player given its file again would start over)."""
        table = train.jobs_table(self.jobs)  # before the view: a job that finishes in between shows finished
        ids = train.job_ids(self.jobs)
        if job_id not in ids:
            job_id = ids[0] if ids else None
        view = train.job_view(self.jobs, job_id)
        samples = train.sample_view(self.jobs, job_id, sample_pick)
        curves = [_frame([m for m in view.metrics if m["split"] == split], TRAIN_PLOT)
                  for split in ("train", "validation")]
        choices = catalog.choices()
        seen = seen if isinstance(seen, dict) else {}
        signature = {"ids": ids, "choices": choices, "sample": samples.key, "sample_choices": samples.choices}
        changed = force or seen.get("ids") != ids or seen.get("choices") != choices
        picker = gr.skip()
        if changed:
            picker = gr.update(choices=choices, value=_kept(picked, choices))
        new_sample = force or seen.get("sample") != samples.key
        sample_outputs = (
            gr.update(choices=samples.choices or [("latest", train.LATEST)], value=samples.pick)
            if force or seen.get("sample_choices") != samples.choices else gr.skip(),
            samples.caption,
            gr.update(value=samples.text or "", visible=samples.kind != "audio") if new_sample else gr.skip(),
            gr.update(value=_playable(samples.audio), visible=samples.kind == "audio") if new_sample else gr.skip(),
            gr.update(value=samples.files or None, visible=len(samples.files) > 1) if new_sample else gr.skip(),
        )
        label = f"{view.state}: {view.progress}" if view.state and view.progress else view.state
        return (table,
                gr.update(choices=ids, value=job_id) if changed else gr.update(value=job_id),
                view.status, train.progress_html(view.fraction, label), *curves, view.log, picker, signature,
                *sample_outputs)

    def on_train_stop(self, job_id):
        try:
            j = train.cancel_job(self.jobs, job_id)
        except UserError as e:
            raise gr.Error(html.escape(str(e)), print_exception=False) from None
        gr.Info(f"{j.id} is {j.state}")

    def on_train_resume(self, job_id, minutes):
        try:
            j = train.resume_job(self.jobs, job_id, minutes, self.limits)
        except UserError as e:
            raise gr.Error(html.escape(str(e)), print_exception=False) from None
        gr.Info(f"{j.id} is {j.state}")

    # ---- Speed tab -------------------------------------------------------------------------------------------
    def on_speed(self, l_min, l_max, samples, request: gr.Request = None):
        key = _key(request, "speed")
        event = self.stops.arm(key)
        try:
            per_layer = len(speed.available_methods())
            for rows, status in speed.run(l_min, l_max, samples, self.limits, stop=event):
                complete = rows[: len(rows) - len(rows) % per_layer]  # whole layers only: no half-drawn point
                figure = plots.speed_figure(complete) if complete else None
                yield figure if complete else gr.skip(), speed.table(rows), status
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
            demo.load(*self._train_load, api_visibility="private", show_progress="hidden")
        self.demo = demo
        return demo

    def _generate_tab(self, values, start):
        lim = self.limits
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                with gr.Row():
                    self.model = gr.Dropdown(values, value=start, label="Model", scale=8, elem_id="model-picker",
                                             allow_custom_value=True)  # the list grows as models are trained
                    refresh = gr.Button("↻", scale=0, min_width=44, size="sm", elem_id="refresh-models")
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
                    # a Textbox, not a gr.Number: Gradio 6's Number shows an empty value as 0 (its browser code
                    # sets `value ??= 0`), which fixed the seed at 0 once the panel was opened
                    seed = gr.Textbox("", label="Seed (empty = a new random seed each run)", placeholder="random",
                                      max_lines=1, elem_id="seed")
                    seed_used = gr.Markdown(seed_note(None), elem_id="seed-used")
                    variations = gr.Slider(1, lim.max_variations, value=1, step=1,
                                           label="Variations (generated together)")
                    beam = gr.Slider(1, lim.max_beam_width, value=1, step=1, visible=False, elem_id="beam-width",
                                     label="Beam width (1 = sample; more = beam search for the best output)")
                    averaging = gr.Slider(0.0, 1.0, value=0.0, step=0.05, visible=False, elem_id="averaging",
                                          label="Hidden-state averaging (RNN: mix the mean of past states into "
                                                "each step; 0 = off)")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop-btn")
            with gr.Column(scale=3, min_width=320):
                status = gr.Markdown("Press **Generate**.", elem_id="status")
                live = live_player.player("Live audio (variation 1):", "live-audio")
                text_out = gr.Textbox(label="Generated text", lines=14, elem_id="text-out", buttons=["copy"])
                full = gr.Audio(type="numpy", format="wav",
                                label="Full audio (variation 1; download button at the top right)",
                                elem_id="full-audio", interactive=False)
                files = gr.File(label="All variations (wav)", file_count="multiple", elem_id="wav-files",
                                interactive=False)
                # no label over the image: it covered the figure's own titles (waveform, spectrogram: model)
                image = gr.Image(type="filepath", label="Waveform and spectrogram", show_label=False, elem_id="plot",
                                 interactive=False)
                figure = gr.State(None)  # what `on_figure` draws into `image` after the generation has ended
        form_outputs = [info, seed_text, prompt_audio, cond, seconds, tokens, live, text_out, full, files, image,
                        beam, averaging]
        self.model.change(self.on_model, [self.model], form_outputs, api_name="model_form")
        refresh.click(self.picker, [self.model], [self.model], api_name="refresh_models")
        gen_event = go.click(self.on_generate,
                             [self.model, seed_text, prompt_audio, cond, temperature, top_k, top_p, seconds, tokens,
                              seed, variations, beam, averaging],
                             [live, text_out, status, full, files, image, seed_used, figure], api_name="generate",
                             concurrency_limit=1, concurrency_id="cpu")
        gen_event.success(self.on_figure, [figure], [image], api_name="figure", show_progress="hidden",
                          concurrency_limit=1, concurrency_id="figure")
        stop.click(self.on_stop, None, None, api_name="stop", queue=False)
        self._gen_event = gen_event
        self._form_outputs = form_outputs

    def _train_tab(self):
        lim = self.limits
        fams = train.families()
        fam0 = "wavenet" if "wavenet" in fams else (fams[0] if fams else None)
        gr.Markdown("Train your own model in the background: upload a text file, a names list (one per line), or "
                    "audio files (or a zip of them), pick a model family and a preset, and press **Start "
                    "training**. The loss curve updates live; the best checkpoint so far appears in the "
                    "**Generate** tab's model list, where you can try it while it trains.")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                files = gr.File(label=f"Training data (at most {lim.max_upload_mb} MB per file)",
                                file_count="multiple", elem_id="train-files",
                                file_types=[*train.TEXT_EXT, *train.AUDIO_EXT, ".zip"])
                kind = gr.Radio(list(train.DATA_KINDS), value="Detect from the files", label="Data type")
                family = gr.Dropdown(fams, value=fam0, label="Model family", elem_id="train-family")
                detected = gr.Markdown("", elem_id="train-detected")
                preset = gr.Dropdown(train.preset_choices(fam0), value="small", label="Preset",
                                     elem_id="train-preset")
                minutes = gr.Slider(0.5, lim.train_max_minutes, value=min(5.0, lim.train_max_minutes), step=0.5,
                                    label="Time budget (minutes)")
                # a Textbox: Gradio 6's Number shows an empty value as 0
                max_steps = gr.Textbox("", label="Max steps (empty = the preset's)", placeholder="the preset's",
                                       max_lines=1, elem_id="train-max-steps")
                name = gr.Textbox(label="Name (optional)", max_length=60)
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
            with gr.Column(scale=3, min_width=320):
                # no value at build time: a Dropdown defaults to its first choice, which would be the newest
                # job at start-up; the page's load event picks the newest job now
                job = gr.Dropdown(train.job_ids(self.jobs), value=None, label="Job", allow_custom_value=True,
                                  elem_id="train-job")
                status = gr.Markdown("No job selected.", elem_id="train-status")
                progress = gr.HTML(train.progress_html(0.0), elem_id="train-progress")
                with gr.Row():
                    plot = gr.LinePlot(None, x="step", y="loss", title="Training loss (nats per token)",
                                       height=260, elem_id="train-plot")
                    val_plot = gr.LinePlot(None, x="step", y="loss", title="Held-out loss (nats per token)",
                                           height=260, elem_id="val-plot")
                with gr.Row():
                    stop_job = gr.Button("Stop job", variant="stop")
                    resume = gr.Button("Resume job")
                with gr.Group(elem_id="train-samples"):
                    sample_pick = gr.Dropdown([("latest", train.LATEST)], value=train.LATEST,
                                              label="Samples written at each evaluation (step · held-out loss)",
                                              elem_id="train-sample-pick")
                    sample_caption = gr.Markdown(train.SampleView().caption, elem_id="train-sample-caption")
                    sample_text = gr.Textbox(label="Text sample", lines=6, max_lines=12, interactive=False,
                                             elem_id="train-sample-text")
                    sample_audio = gr.Audio(type="numpy", format="wav", label="Audio sample", interactive=False,
                                            visible=False, elem_id="train-sample-audio")
                    self.sample_audio = sample_audio
                    sample_files = gr.File(label="Every class's sample at this step", file_count="multiple",
                                           interactive=False, visible=False, elem_id="train-sample-files")
                table = gr.Dataframe(headers=train.TABLE_HEADERS, interactive=False, wrap=True,
                                     elem_id="train-table")
                log = gr.Textbox(label="Log (last lines)", lines=6, max_lines=6, elem_id="train-log")
        seen = gr.State(None)  # what the picker, job list and sample player showed at the last tick
        timer = gr.Timer(2.0)
        view_outputs = [table, job, status, progress, plot, val_plot, log, self.model, seen,
                        sample_pick, sample_caption, sample_text, sample_audio, sample_files]
        tick_inputs = [job, self.model, seen, sample_pick]
        family.change(lambda f: gr.update(choices=train.preset_choices(f), value="small"), [family], [preset],
                      api_visibility="private")
        files.upload(self.on_train_files, [files, kind, family], [family, detected], api_visibility="private")
        kind.change(self.on_train_files, [files, kind, family], [family, detected], api_visibility="private")
        start.click(self.on_train_start, [files, kind, family, preset, minutes, max_steps, name],
                    view_outputs, api_name="train_start").then(
            self.on_train_tick, tick_inputs, view_outputs, api_visibility="private")
        timer.tick(self.on_train_tick, tick_inputs, view_outputs, api_name="train_tick",
                   show_progress="hidden", concurrency_limit=None)
        job.change(lambda j, m, p: self.on_train_tick(j, m, None, train.LATEST), [job, self.model, sample_pick],
                   view_outputs, api_visibility="private", show_progress="hidden")
        sample_pick.input(self.on_train_tick, tick_inputs, view_outputs, api_visibility="private",
                          show_progress="hidden")
        stop_job.click(self.on_train_stop, [job], None, api_name="train_stop").then(
            self.on_train_tick, tick_inputs, view_outputs, api_visibility="private")
        resume.click(self.on_train_resume, [job, minutes], None, api_name="train_resume").then(
            self.on_train_tick, tick_inputs, view_outputs, api_visibility="private")
        self._train_load = (self.on_train_tick, [gr.State(None), self.model, gr.State(None), gr.State(train.LATEST)],
                            view_outputs)

    def _speed_tab(self):
        lim = self.limits
        gr.Markdown("The Fast WaveNet experiment on this machine: a random WaveNet with 2 blocks of L layers "
                    "generates after a prompt that fills its receptive field. **Naive** recomputes the whole "
                    "receptive field for every sample (cost doubles with each layer); **cached** keeps a queue "
                    "per layer (cost grows by one layer's work); **cached fast** runs the same queues in a "
                    "compiled loop.")
        with gr.Row():
            lo = gr.Slider(1, lim.speed_max_layers, value=2, step=1, label="L from")
            hi = gr.Slider(1, lim.speed_max_layers, value=min(10, lim.speed_max_layers), step=1, label="L to")
            n = gr.Slider(2, lim.speed_tokens, value=min(50, lim.speed_tokens), step=1,
                          label="Samples timed per point")
        with gr.Row():
            run = gr.Button("Run", variant="primary", elem_id="speed-run")
            stop = gr.Button("Stop", variant="stop")
        status = gr.Markdown(elem_id="speed-status")
        # a matplotlib figure, not gr.LinePlot: that has no log axis, and its ticks fall between layers
        plot = gr.Plot(label="Time per sample vs layers per block (log scale)", show_label=False,
                       elem_id="speed-plot", format="png")  # the figure has its own title
        self.speed_plot = plot
        table = gr.Dataframe(headers=speed.TABLE_HEADERS, interactive=False, elem_id="speed-table")
        run.click(self.on_speed, [lo, hi, n], [plot, table, status], api_name="speed",
                  concurrency_limit=1, concurrency_id="cpu")
        stop.click(self.on_stop_speed, None, None, api_name="stop_speed", queue=False)


def build_app(limits: Limits | None = None) -> tuple[gr.Blocks, App]:
    app = App(limits)
    return app.build(), app

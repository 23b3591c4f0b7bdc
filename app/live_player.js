// The live player (app/live_player.py): plays each chunk the server sends through the Web Audio API, as it
// arrives.  Runs as gr.HTML's js_on_load: `element` is the component, `props.value` the latest message, a JSON
// string: {run, seq, rate} when a run starts, {run, seq, rate, pcm} for a chunk (pcm: base64 little-endian
// int16) and {run, seq, end} after the last one.
// Chunks of one run are scheduled back to back on one AudioContext running at the model's own sample rate, so
// they join sample-exactly and the browser resamples the whole stream once for the speakers.
// `element.__live.events` records [name, performance.now() ms] for tests: "playing" when the first sample of a
// run reaches the output (the output timestamp, so the device latency is included), "waiting" / "playing" around
// a gap when a chunk came after the audio before it had run out, "ended" when the last sample has played, and
// "chunk" when each chunk arrived.
const LEAD_S = 0.03;  // a run's first chunk starts this far after it arrives: the audio thread needs a little time
// One player per page: Gradio unmounts a hidden component and runs this again when it is shown, so the state
// (and the audio context) lives on `window` and only the element it reports to changes.
const live = element.__live = window.__liveAudioPlayer = window.__liveAudioPlayer ||
  {ctx: null, rate: 0, run: null, seq: -1, next: 0, sources: [], received: 0, gaps: 0, events: [], end: false};
live.element = element;

function show(text) {
  const label = live.element.querySelector('.live-state');
  if (label) label.textContent = text;
}

function note(name, ms) {
  live.events.push([name, ms]);
  live.element.dispatchEvent(new CustomEvent('live-' + name));
}

function context(rate) {
  // one context per sample rate, created (or resumed) at the Generate click for the last run's rate and at a
  // run's first message for its own: the page has had the click by then, so the browser lets it play
  if (live.ctx && live.rate !== rate) { live.ctx.close(); live.ctx = null; }
  if (!live.ctx) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    try { live.ctx = new Context({sampleRate: rate, latencyHint: 'interactive'}); }
    catch (e) { live.ctx = new Context(); }  // a rate this browser refuses: chunks are resampled one by one
    live.rate = rate;
  }
  if (live.ctx.state !== 'running') live.ctx.resume();
  return live.ctx;
}

function heardAt(ctx, t) {
  // performance.now() when context time t reaches the speakers
  const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
  if (ts && ts.performanceTime > 0) return ts.performanceTime + (t - ts.contextTime) * 1000;
  return performance.now() + (t - ctx.currentTime + (ctx.outputLatency || ctx.baseLatency || 0)) * 1000;
}

function stopAll() {
  for (const s of live.sources) { try { s.stop(); } catch (e) { /* not started yet */ } }
  live.sources = [];
}

function silence(why) {
  // the player's own button, or the Generate tab's Stop: what is still scheduled is dropped (the full audio
  // below keeps the clip); chunks of this run that come later are not played
  stopAll();
  live.muted = live.run;
  show(why);
}

function start(run) {
  stopAll();
  Object.assign(live, {run: run, seq: -1, next: 0, received: 0, gaps: 0, end: false});
  show('Waiting for the first audio…');
}

function play(m) {
  note('chunk', performance.now());
  const ctx = context(m.rate);
  if (!ctx) { show('This browser has no Web Audio: the full audio appears below when the clip is done.'); return; }
  const bytes = Uint8Array.from(atob(m.pcm), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  if (!pcm.length) return;
  const buffer = ctx.createBuffer(1, pcm.length, m.rate);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
  const src = ctx.createBufferSource();
  src.buffer = buffer;
  src.connect(ctx.destination);
  const soonest = ctx.currentTime + LEAD_S;
  const first = live.received === 0;
  const at = first ? soonest : Math.max(live.next, soonest);
  if (!first && at > live.next + 1e-3) {  // the audio before ran out before this chunk came
    live.gaps += 1;
    note('waiting', heardAt(ctx, live.next));
    note('playing', heardAt(ctx, at));
  }
  if (first) note('playing', heardAt(ctx, at));
  src.start(at);
  live.next = at + buffer.duration;
  live.sources.push(src);
  src.onended = () => {
    live.sources = live.sources.filter((s) => s !== src);
    if (live.end && live.sources.length === 0 && live.muted !== live.run) finish();
  };
  live.received += buffer.duration;
  show(`Playing · ${live.received.toFixed(1)} s received` + (live.gaps ? ` · ${live.gaps} gaps` : ''));
}

function finish() {
  note('ended', performance.now());
  show(`Played ${live.received.toFixed(1)} s` + (live.gaps ? ` (${live.gaps} gaps: the model ran slower than ` +
       'real time; the full audio below has none)' : ''));
}

live.receive = (m) => {  // one message (also called by the browser test with messages it makes)
  if (m.run !== live.run) start(m.run);
  if (m.seq <= live.seq) return;
  live.seq = m.seq;
  if (m.rate && !m.pcm) context(m.rate);  // the run's first message: the context starts while the model works
  if (m.pcm && live.muted !== live.run) play(m);
  if (m.end) {
    live.end = true;
    if (live.sources.length === 0 && live.muted !== live.run) finish();
  }
};

watch('value', () => {
  if (!props.value) return;
  let m;
  try { m = JSON.parse(props.value); } catch (e) { return; }
  live.receive(m);
});

// the Generate click creates the context (starting an audio device takes tens of ms), so the first chunk
// does not wait for it
if (!live.listening) {
  live.listening = true;
  document.addEventListener('pointerdown', (e) => {
    const on = (id) => e.target.closest && e.target.closest(id);
    if (live.rate && on('#generate-btn')) context(live.rate);
    if (on('#stop-btn') && live.sources.length) silence('Stopped.');
  }, true);
}
const button = element.querySelector('.live-stop');
if (button) button.addEventListener('click', () => silence('Stopped playing.'));

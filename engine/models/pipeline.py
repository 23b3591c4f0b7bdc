"""A two-stage pipeline: a token language model plans feature frames, a vocoder plays them (AudioLM, MusicGen and
Tacotron 2 + WaveNet split the work the same way).

One checkpoint holds both models and the frame-token codebook (engine/frame_tokens.py) as one model: its config
names each part's family and config, its weights are the parts' weights under `lm.` and `vocoder.` plus the
codebook.  Generation (`generate_stream`, which `engine.generate` calls for it): the LM samples frame tokens
`plan_chunk` at a time, with the caller's temperature, top-k and top-p, after `[start, class]` (the class, e.g.
the digit to say, is the LM's first token); the tokens decode to frames (each its centroid, or with a learned token
decoder, `codebook_decoder`, its centroid corrected from the tokens around it: a frame is decoded once the
decoder's `context` tokens after it are planned); the vocoder streams samples
as soon as the frames they depend on exist (its lookahead, engine/layers/frame_conditioner.py), at its own
temperature (`vocoder_temperature`, a decode option).  Classifier-free guidance (`guidance`, a decode option whose
default the config stores; AudioGen and MusicGen sample the same way): with an LM that also knows the null class
(trained with class dropout), each token is drawn from `log p(t | null) + guidance * (log p(t | class) - log p(t |
null))`, renormalised, then tempered and truncated as usual; guidance 1 is the plain conditional LM, larger values
say the class more clearly at some cost in variety.  An audio prompt is continued: its frames, as tokens, prime
the LM and its samples prime the vocoder, whose conditioning over the prompt is the prompt's own frames, so the
continuation starts from the prompt's last sample.

Given frames (`cond=Conditioning(frames=...)`), the pipeline is its vocoder: `forward`, `init_state`, `step` and
`prime` are the vocoder's, so it obeys the protocol like any model, and copy-synthesis works on it too.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..audio import decode_audio
from ..errors import UserError
from ..features import LogMel
from ..frame_tokens import FrameCodebook, TokenLayout
from ..layers.token_decoder import TokenDecoder, TokenDecoderConfig
from ..protocol import AutoregressiveModel, Conditioning, TokenSpec, split_conditioning
from ..registry import build_model, register_family
from ..sampling import RandomStream, SamplingConfig, sample


@dataclass
class PipelineConfig:
    lm_family: str = "rnn"
    lm: dict = field(default_factory=dict)  # the LM's config (vocab = codebook_size + n_classes + 2)
    vocoder_family: str = "wavenet"
    vocoder: dict = field(default_factory=dict)  # the vocoder's config (local conditioning, features)
    codebook_size: int = 256
    n_classes: int = 0  # class prefix tokens (0 = unconditioned)
    class_names: list[str] = field(default_factory=list)
    max_frames: int = 1000  # the most frames one generation plans
    plan_chunk: int = 4  # tokens planned between two rounds of vocoding
    min_frames: int = 8  # the end token is not sampled before this many frames (an empty clip says nothing)
    null_class: bool = False  # the LM also reads the null class id (engine.frame_tokens.TokenLayout)
    guidance: float = 1.0  # default classifier-free guidance scale (1 = none; needs null_class)
    codebook_decoder: dict | None = None  # a learned token decoder's config (TokenDecoderConfig); None: centroids

    def __post_init__(self) -> None:
        if self.codebook_size < 2 or self.n_classes < 0 or self.max_frames < 1 or self.plan_chunk < 1:
            raise UserError("a pipeline needs codebook_size >= 2, n_classes >= 0, max_frames and plan_chunk >= 1")
        if not self.lm or not self.vocoder:
            raise UserError("a pipeline needs both parts: its config must hold `lm` and `vocoder`")
        _check_guidance(self.guidance, self.null_class, self.n_classes)


@dataclass
class _Plan:
    """The LM's side of one generation."""

    state: Any
    logits: torch.Tensor
    rng: RandomStream
    codes: list[int]
    ended: bool = False
    guidance: float = 1.0


class Pipeline(AutoregressiveModel):
    half_precision_prefixes = ("token_decoder.", "lm.", "vocoder.")  # float16 when saved with half_precision

    def __init__(self, config: PipelineConfig):
        super().__init__()
        self.config = cfg = config
        self.lm = build_model(cfg.lm_family, **cfg.lm)
        self.vocoder = build_model(cfg.vocoder_family, **cfg.vocoder)
        features = self.vocoder.frame_features
        if features is None:
            raise UserError(f"the pipeline's vocoder ({cfg.vocoder_family}) is not conditioned on frames")
        self.layout = TokenLayout(cfg.codebook_size, cfg.n_classes, cfg.null_class)
        lm_tokens = self.lm.tokens
        if (lm_tokens.vocab_size, lm_tokens.start_id, lm_tokens.eos_id) != (
                self.layout.vocab_size, self.layout.start_id, self.layout.end_id):
            raise UserError(f"the pipeline's LM reads {lm_tokens.vocab_size} ids (start {lm_tokens.start_id}, end "
                            f"{lm_tokens.eos_id}); {cfg.codebook_size} tokens and {cfg.n_classes} classes need "
                            f"{self.layout.vocab_size} (start {self.layout.start_id}, end {self.layout.end_id})")
        self.register_buffer("codebook_centroids", torch.zeros(cfg.codebook_size, features.n_mels))
        self.register_buffer("codebook_mean", torch.zeros(features.n_mels))
        self.register_buffer("codebook_std", torch.ones(features.n_mels))
        self.token_decoder = None
        if cfg.codebook_decoder is not None:
            try:
                decoder_cfg = TokenDecoderConfig(**cfg.codebook_decoder)
            except (TypeError, UserError) as e:
                raise UserError(f"the pipeline's codebook_decoder {cfg.codebook_decoder} is not a token decoder "
                                f"config: {e}") from None
            self.token_decoder = TokenDecoder(cfg.codebook_size, features.n_mels, decoder_cfg)

    @classmethod
    def compose(cls, lm: AutoregressiveModel, vocoder: AutoregressiveModel, codebook: FrameCodebook,
                class_names: list[str] | None = None, **extra) -> "Pipeline":
        """A pipeline from trained parts (weights copied)."""
        import dataclasses
        names = list(class_names or [])
        null = bool(names) and lm.tokens.vocab_size == TokenLayout(codebook.size, len(names), True).vocab_size
        decoder = None if codebook.decoder is None else codebook.decoder.config.to_dict()
        model = cls(PipelineConfig(lm.family, dataclasses.asdict(lm.config), vocoder.family,
                                   dataclasses.asdict(vocoder.config), codebook.size, len(names), names,
                                   null_class=null, codebook_decoder=decoder, **extra))
        model.lm.load_state_dict(lm.state_dict())
        model.vocoder.load_state_dict(vocoder.state_dict())
        with torch.no_grad():
            model.codebook_centroids.copy_(codebook.centroids)
            model.codebook_mean.copy_(codebook.mean)
            model.codebook_std.copy_(codebook.std)
        if codebook.decoder is not None:
            model.token_decoder.load_state_dict(codebook.decoder.state_dict())
        return model

    @property
    def codebook(self) -> FrameCodebook:
        return FrameCodebook(self.codebook_centroids, self.codebook_mean, self.codebook_std, self.token_decoder)

    # ---- as its vocoder (given frames) -------------------------------------------------------------------------
    @property
    def receptive_field(self) -> int | None:
        return self.vocoder.receptive_field

    @property
    def tokens(self) -> TokenSpec:
        return self.vocoder.tokens

    @property
    def frame_features(self):
        return self.vocoder.frame_features

    @property
    def frame_context(self) -> int:
        return self.vocoder.frame_context

    @property
    def num_classes(self) -> int:
        return self.config.n_classes  # the LM's prefix tokens

    @property
    def decode_options(self) -> dict[str, Any]:
        return {"vocoder_temperature": 1.0, "guidance": self.config.guidance}

    def forward(self, x: torch.Tensor, cond: Any = None) -> torch.Tensor:
        return self.vocoder(x, cond)

    def init_state(self, batch_size: int, cond: Any = None, device=None, vocoder_temperature: float = 1.0):
        return self.vocoder.init_state(batch_size, cond, device)

    def step(self, x_t: torch.Tensor, state: Any):
        return self.vocoder.step(x_t, state)

    def prime(self, x: torch.Tensor, state: Any):
        return self.vocoder.prime(x, state)

    # ---- planning and playing ----------------------------------------------------------------------------------
    def generate_stream(self, prompt, max_new_tokens: int, cfg: SamplingConfig, cond: Any, seed: int | None,
                        chunk_size: int, batch_size: int | None, backend: str,
                        decode_options: dict[str, Any]) -> Iterator[torch.Tensor]:
        """What `engine.generate` yields for a pipeline: new samples [1, n] as soon as they can be made."""
        from ..generation import MAX_SEED, TokenStream, _generate
        classes, frames = split_conditioning(cond)
        if frames is not None:  # frames given: the pipeline is its vocoder (copy-synthesis)
            yield from _generate(self.vocoder, prompt, max_new_tokens, cfg, cond, seed, chunk_size, batch_size,
                                 backend, None)
            return
        unknown = set(decode_options) - set(self.decode_options)
        if unknown:
            raise UserError(f"a pipeline takes no decode option {sorted(unknown)}; it takes "
                            f"{', '.join(self.decode_options)}")
        voc_cfg = SamplingConfig(float(decode_options.get("vocoder_temperature", 1.0)))
        guidance = self._guidance(decode_options.get("guidance"))
        if batch_size not in (None, 1):
            raise UserError("a pipeline makes one clip at a time (batch 1)")
        label = self._class(classes)
        features, spec = self.vocoder.frame_features, self.tokens
        hop, look = features.hop, self.vocoder.frame_net.lookahead
        samples = self._prompt_samples(prompt)
        known, codes = self._prompt_frames(samples)  # real frames of the prompt's complete frames, their tokens
        plan = self._start_plan(label, codes, cfg, seed, guidance)
        voc_seed = None if seed is None else (seed + 1) % (MAX_SEED + 1)
        book = self.codebook
        frames_so_far = known  # until the vocoder starts: its first sample is drawn from frames it can see
        voice: TokenStream | None = None
        given = known.shape[-1]  # frames decoded so far
        made, offset = 0, len(samples)  # new samples made; the timeline sample of the first new one
        while made < max_new_tokens:
            if not plan.ended:
                self._plan_more(plan, cfg)
            final = len(plan.codes) if plan.ended else len(plan.codes) - book.context  # frames that can be decoded
            if final > given and (plan.ended or final - given >= 2 * book.context):  # margins cost <= the frames
                frames = book.decode(torch.tensor(plan.codes, dtype=torch.long), given, final).unsqueeze(0)
                if voice is None:
                    frames_so_far = torch.cat([frames_so_far, frames], -1)
                else:
                    self.vocoder.add_frames(voice.state, frames)
                given = final
            if plan.ended:
                ready = given * hop - offset  # every frame is known: play to the end of the last one
            else:
                ready = max(0, (given - look) * hop - offset)
            ready = min(ready, max_new_tokens)
            if made < ready and voice is None:
                voice = TokenStream(self.vocoder, torch.cat([torch.tensor([spec.start_id]), samples]),
                                    Conditioning(frames=frames_so_far), voc_cfg, voc_seed, backend)
            while made < ready:
                n = min(chunk_size, ready - made)
                yield voice.take(n)
                made += n
            if plan.ended:
                return

    def plan_codes(self, cond: Any, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                   seed: int | None = None, guidance: float | None = None) -> list[int]:
        """The frame tokens `generate` plans for this class and seed (no prompt), without playing them: the LM
        has its own random stream, so these are exactly the tokens behind that generation's audio."""
        cfg = SamplingConfig(temperature, top_k, top_p)
        with torch.inference_mode():
            plan = self._start_plan(self._class(cond), [], cfg, seed, self._guidance(guidance))
            while not plan.ended:
                self._plan_more(plan, cfg)
        return plan.codes

    def _class(self, classes) -> int | None:
        if not self.config.n_classes:
            if classes is not None:
                raise UserError("this pipeline is not class-conditioned; leave the class out")
            return None
        names = self.config.class_names
        if classes is None:
            raise UserError(f"pick what to generate: a class id 0..{self.config.n_classes - 1}"
                            + (f" ({', '.join(f'{i}={n}' for i, n in enumerate(names))})" if names else ""))
        c = torch.as_tensor(classes).reshape(-1)
        if c.numel() != 1 or not 0 <= int(c[0]) < self.config.n_classes:
            raise UserError(f"the class must be one id in 0..{self.config.n_classes - 1}")
        return int(c[0])

    def _prompt_samples(self, prompt) -> torch.Tensor:
        if prompt is None:
            return torch.zeros(0, dtype=torch.long)
        x = torch.as_tensor(prompt, dtype=torch.long)
        if x.dim() == 2:
            if x.shape[0] != 1:
                raise UserError("a pipeline continues one prompt at a time (batch 1)")
            x = x[0]
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.tokens.vocab_size):
            raise UserError(f"prompt ids must be in 0..{self.tokens.vocab_size - 1}")
        return x.cpu()

    def _prompt_frames(self, samples: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The frames a prompt fixes (its complete frames, from its own samples) and their tokens."""
        spec, features = self.tokens, self.vocoder.frame_features
        whole = len(samples) // features.hop
        if whole == 0:
            return torch.zeros(1, features.n_mels, 0), []
        wave = decode_audio(samples[:whole * features.hop], spec)
        frames = LogMel(features)(wave)
        return frames, self.codebook.encode(frames)[0].tolist()

    def _guidance(self, value: Any) -> float:
        g = self.config.guidance if value is None else value
        try:
            g = float(g)
        except (TypeError, ValueError):
            raise UserError(f"guidance must be a number, got {value!r}") from None
        _check_guidance(g, self.config.null_class, self.config.n_classes)
        return g

    def _start_plan(self, label: int | None, codes: list[int], cfg: SamplingConfig, seed: int | None,
                    guidance: float = 1.0) -> _Plan:
        """The LM primed on [start, class] + the prompt's tokens; with guidance, a second row primed on [start,
        null] + the same tokens runs beside it."""
        heads = [[self.layout.start_id] + ([self.layout.class_id(label)] if label is not None else [])]
        if guidance != 1.0 and label is not None:
            heads.append([self.layout.start_id, self.layout.null_id])
        x = torch.tensor([h + codes for h in heads], dtype=torch.long)
        state = self.lm.init_state(len(heads))
        logits, state = self.lm.prime(x, state)
        return _Plan(state, logits, RandomStream(1, seed), list(codes), guidance=guidance)

    @staticmethod
    def _guided(plan: _Plan) -> torch.Tensor:
        """The next token's logits [1, V]: the LM's, or with a null row the guided mix of the two rows."""
        if plan.logits.shape[0] == 1:
            return plan.logits
        logp = torch.log_softmax(plan.logits.float(), -1)
        cond, null = logp[0], logp[1]
        return (null + plan.guidance * (cond - null)).unsqueeze(0)

    def _plan_more(self, plan: _Plan, cfg: SamplingConfig) -> None:
        """`plan_chunk` more tokens (or the end): only frame tokens and the end id may be sampled."""
        codes_only = torch.full((self.layout.vocab_size,), -math.inf)
        codes_only[:self.layout.size] = 0.0
        or_end = codes_only.clone()
        or_end[self.layout.end_id] = 0.0
        for _ in range(self.config.plan_chunk):
            allowed = or_end if len(plan.codes) >= self.config.min_frames else codes_only
            if len(plan.codes) >= self.config.max_frames:
                plan.ended = True
                return
            token = int(sample(self._guided(plan) + allowed, cfg, plan.rng.next())[0])
            if token == self.layout.end_id:
                plan.ended = True
                return
            plan.codes.append(token)
            plan.logits, plan.state = self.lm.step(torch.tensor([token] * plan.logits.shape[0]), plan.state)


def _check_guidance(guidance: float, null_class: bool, n_classes: int) -> None:
    if not math.isfinite(guidance) or guidance < 0:
        raise UserError(f"guidance must be a finite number >= 0 (1 = none), got {guidance}")
    if guidance != 1.0 and not (null_class and n_classes):
        raise UserError("guidance needs a class-conditioned LM trained with class dropout (a null class); "
                        "this pipeline's LM has none, so leave guidance at 1")


register_family("pipeline", PipelineConfig, Pipeline)

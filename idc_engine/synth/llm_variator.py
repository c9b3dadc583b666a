"""Variations written by a local causal LM (the paper: Llama-2-7b-chat), kept only where the guardrails pass them.

Two modes, named for what the lines are used as:

- ``captions``: difference captions of a training variant ("a hat has been added to the dog"); lines the
  guardrails reject are retried, and what is still missing is filled by the templates.
- ``instructions``: imperative variations of the instruction ("Put a hat on the dog"), the paper's test
  references (each Emu Edit test pair scored against its instruction and 4 variations); the prompt asks, as
  the authors' released script does, for neutral, concise editing instructions that keep the meaning. No
  template fill: an instruction short of variations keeps fewer, and the shortfall is counted.

All the variations of one instruction come from one prompt ("write k ..."), and the prompts of many
instructions go through the model in one left-padded batch: one generate call per batch, not one per variant.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from idc_engine.synth.guardrails import (
    REASONS,
    GuardrailConfig,
    check_variation,
    normalize_quotes,
    strip_wrapping_quotes,
)
from idc_engine.synth.templates import TemplateVariator
from idc_engine.synth.variators import VariationResult, Variator, check_item

MODES = ("captions", "instructions")
# The prompts of each mode (system, user); ``{instruction}`` and ``{k}`` are filled in.
PROMPTS = {
    "captions": (
        "You rewrite image-editing instructions as captions that describe the difference between an original "
        "image and its edited version, the way a person describes what changed. For example, the instruction "
        "'Add a hat to the dog' gives captions such as 'a hat has been added to the dog' and 'the dog now wears "
        "a hat'. Keep every object, colour and text the instruction names. Add no names, places, numbers or "
        "other details. Do not refuse, explain, comment or role-play. Answer with the captions only, one per line.",
        "Instruction: {instruction}\nWrite {k} different captions.",
    ),
    # The authors' released script asks Llama-2 for a variation that keeps the instruction's meaning and the
    # form of a neutral, concise instruction for a diffusion model, with nothing else; this asks for k at once.
    "instructions": (
        "You rewrite image-editing instructions. Each rewrite keeps the meaning of the instruction and the form of "
        "a neutral, concise editing instruction in the imperative, as given to an image-editing model: for "
        "example 'Add a hat to the dog' gives 'Put a hat on the dog' and 'Give the dog a hat'. Stay close to the "
        "instruction: keep every object, colour and text it names, and add no names, places, numbers or other "
        "details. Do not refuse, explain, comment or role-play. Answer with the rewrites only, one per line.",
        "Instruction: {instruction}\nWrite {k} different rewrites.",
    ),
}
DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT = PROMPTS["captions"]
_DEVICE = re.compile(r"^(?:auto|cpu|mps|cuda(?::\d+)?)$")
_DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class LLMVariatorConfig:
    """Every setting of the LLM variator; the only home of its defaults."""

    model_path: str = field(
        default="", metadata={"help": "local causal-LM checkpoint folder or cached hub id (loaded offline)"}
    )
    mode: str = field(
        default="captions",
        metadata={
            "help": "captions: difference captions of training variants (template fill); instructions: imperative "
            "variations of the instruction, the paper's test references (no fill)"
        },
    )
    max_new_tokens: int = field(default=128, metadata={"help": "longest answer per generation, in tokens"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature (> 0)"})
    top_p: float = field(default=0.9, metadata={"help": "nucleus sampling: keep the top tokens of this mass"})
    max_attempts: int = field(
        default=3, metadata={"help": "generations per instruction while it is short of k accepted lines"}
    )
    batch_size: int = field(default=8, metadata={"help": "instructions per generate call"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N or mps"})
    dtype: str = field(default="auto", metadata={"help": f"weights dtype, one of {_DTYPES}"})
    guardrails: GuardrailConfig = field(
        default_factory=GuardrailConfig, metadata={"help": "thresholds of the guardrails"}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "the system message; None: the mode's"})
    user_prompt: str | None = field(
        default=None, metadata={"help": "the user message ({instruction} and {k} filled in); None: the mode's"}
    )

    def __post_init__(self):
        if not isinstance(self.model_path, str) or not self.model_path.strip():
            raise ValueError(f"model_path must name a local checkpoint, got {self.model_path!r}")
        for name in ("max_new_tokens", "max_attempts", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.temperature, (int, float)) or self.temperature <= 0:
            raise ValueError(f"temperature must be a number > 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        if isinstance(self.guardrails, dict):
            self.guardrails = GuardrailConfig(**self.guardrails)
        if not isinstance(self.guardrails, GuardrailConfig):
            raise ValueError(f"guardrails must be a GuardrailConfig or a dict, got {self.guardrails!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.system_prompt is None:
            self.system_prompt = PROMPTS[self.mode][0]
        if self.user_prompt is None:
            self.user_prompt = PROMPTS[self.mode][1]
        if "{instruction}" not in self.user_prompt:
            raise ValueError(f"user_prompt must contain {{instruction}}, got {self.user_prompt!r}")

    def to_dict(self) -> dict:
        return {
            "model_path": self.model_path,
            "mode": self.mode,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_attempts": self.max_attempts,
            "batch_size": self.batch_size,
            "device": self.device,
            "dtype": self.dtype,
            "guardrails": self.guardrails.to_dict(),
            "system_prompt": self.system_prompt,
            "user_prompt": self.user_prompt,
        }


_NUMBERING = re.compile(r"^\s*(?:\(?\d{1,2}[.):\]]|[-*\u2022\u00b7>]|#+)\s*")
_LABEL = re.compile(r"^(?:caption|variation|rewrite|option)\s*\d*\s*[:.-]\s*", re.IGNORECASE)


def parse_generation(text: str) -> list[str]:
    """One candidate per non-empty line, numbering, bullets, labels and wrapping quotes stripped."""
    out = []
    for line in normalize_quotes(text).splitlines():
        line = _LABEL.sub("", _NUMBERING.sub("", line.strip()))
        line = strip_wrapping_quotes(line).strip()
        if line:
            out.append(line)
    return out


def _tidy(line: str, lowercase: bool = True) -> str:
    """A kept line without its trailing full stop; as a caption, with a lowercase first letter unless it starts
    an acronym (an instruction keeps its capital)."""
    line = re.sub(r"[\s.;,]+$", "", line)
    first = line.split(" ", 1)[0]
    if lowercase and first[:1].isupper() and not (len(first) > 1 and first.isupper()):
        line = line[0].lower() + line[1:]
    return line


def _row_seed(seed: int, attempt: int) -> int:
    return random.Random(f"llm:{seed}:{attempt}").getrandbits(63)


class _PerRowSampler:
    """Temperature + top-p sampling with one ``torch.Generator`` per row, as a logits processor under greedy
    decoding: each row consumes exactly one uniform draw per step from its own generator, so a row's text
    depends on its prompt and seed only, not on which other instructions share its batch."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
        keep = (sorted_probs.cumsum(-1) - sorted_probs) < self.top_p  # the top token is always kept
        sorted_probs = sorted_probs * keep
        cumulative = (sorted_probs / sorted_probs.sum(-1, keepdim=True)).cumsum(-1)
        draws = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(cumulative)
        pick = torch.searchsorted(cumulative, draws[:, None]).clamp(max=cumulative.shape[-1] - 1)
        chosen = order.gather(-1, pick)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, chosen, 0.0)


@dataclass
class _Pending:
    instruction: str
    k: int
    seed: int
    accepted: list[str] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)


class LLMVariator(Variator):
    """Variations written by a local causal LM, checked by the guardrails, filled up by the templates.

    ``generate_fn(prompts, seeds) -> texts`` replaces the model's raw-text generation step (one text per
    prompt, each prompt with its own seed): a seam for tests and for callers with their own serving. The
    prompts then still use the chat template of the tokenizer at ``model_path`` when one loads from there,
    else the plain prompt; the model itself is never loaded.
    """

    name = "llm"

    def __init__(
        self,
        config: LLMVariatorConfig,
        generate_fn: Callable[[list[str], list[int]], list[str]] | None = None,
    ):
        if not isinstance(config, LLMVariatorConfig):
            raise ValueError(f"config must be an LLMVariatorConfig, got {type(config).__name__}")
        self.config = config
        self._uses_model = generate_fn is None
        self._generate_fn = self._generate if generate_fn is None else generate_fn
        self._template = TemplateVariator()
        self.generate_calls = 0  # generation calls made (each for up to batch_size instructions)
        self._tokenizer = None
        self._tokenizer_tried = False
        self._model = None

    def settings(self) -> dict:
        fallback = self._template.name if self.config.mode == "captions" else None
        return {"variator": self.name, **self.config.to_dict(), "fallback": fallback}

    # -------------------------------------------------------------------------------------- model
    def _device(self) -> str:
        if self.config.device != "auto":
            return self.config.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        path = self.config.model_path
        self._tokenizer_tried = True
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except OSError as error:
            raise ValueError(f"model_path {path!r}: no local tokenizer found ({error})") from error
        tokenizer.padding_side = "left"  # decoder-only batches must end where generation starts
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError(f"model_path {path!r}: the tokenizer has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer = tokenizer

    def _load(self):
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM

        if self._tokenizer is None:
            self._load_tokenizer()
        path = self.config.model_path
        dtype = "auto" if self.config.dtype == "auto" else getattr(torch, self.config.dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype)
        except OSError as error:
            raise ValueError(f"model_path {path!r}: no local causal-LM checkpoint found ({error})") from error
        self._model = model.to(self._device()).eval()

    def build_prompt(self, instruction: str, k: int) -> str:
        """The chat-templated prompt when the tokenizer has a chat template, else a plain one."""
        system = self.config.system_prompt
        user = self.config.user_prompt.format(instruction=instruction.strip(), k=k)
        tokenizer = self._tokenizer
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            from jinja2 import TemplateError

            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            try:
                return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except TemplateError:  # templates without a system role (Gemma, Mistral) raise from their Jinja code
                merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
                return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        return f"{system}\n\n{user}\n{'Captions' if self.config.mode == 'captions' else 'Rewrites'}:\n"

    def _generate(self, prompts: list[str], seeds: list[int]) -> list[str]:
        """Sample one answer per prompt, in one left-padded batch; the new tokens decoded to text."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        self._load()
        tokenizer, model = self._tokenizer, self._model
        templated = bool(getattr(tokenizer, "chat_template", None))  # the template wrote the special tokens
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated)
        batch = batch.to(model.device)
        eos = model.generation_config.eos_token_id
        generation = GenerationConfig(
            max_new_tokens=self.config.max_new_tokens,
            do_sample=False,  # the per-row sampler below picks each token; greedy keeps its pick
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos if eos is not None else tokenizer.eos_token_id,
        )
        sampler = _PerRowSampler(seeds, self.config.temperature, self.config.top_p)
        with torch.no_grad():
            output = model.generate(
                **batch, generation_config=generation, logits_processor=LogitsProcessorList([sampler])
            )
        return tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)

    # ---------------------------------------------------------------------------------- variation
    def vary(self, instruction: str, k: int, seed: int) -> VariationResult:
        return self.vary_batch([(instruction, k, seed)])[0]

    def vary_batch(self, items: Sequence[tuple[str, int, int]]) -> list[VariationResult]:
        """Up to ``max_attempts`` generations for each instruction still short of k accepted lines, batched
        ``batch_size`` at a time; every rejected line is counted by reason; the templates fill the rest."""
        pending = [_Pending(*check_item(*item)) for item in items]
        if pending and self._uses_model:
            self._load()  # the prompts need the tokenizer's chat template
        elif pending and not self._tokenizer_tried:
            try:
                self._load_tokenizer()
            except ValueError:  # documented: a generate_fn without a local tokenizer gets plain prompts
                pass
        for attempt in range(self.config.max_attempts):
            short = [p for p in pending if len(p.accepted) < p.k]
            for start in range(0, len(short), self.config.batch_size):
                chunk = short[start : start + self.config.batch_size]
                prompts = [self.build_prompt(p.instruction, p.k) for p in chunk]
                texts = self._generate_fn(prompts, [_row_seed(p.seed, attempt) for p in chunk])
                self.generate_calls += 1
                if len(texts) != len(chunk):
                    raise ValueError(f"generation returned {len(texts)} texts for {len(chunk)} prompts")
                for p, text in zip(chunk, texts, strict=True):
                    self._take(p, text)
        results = []
        for p in pending:
            fill = []
            if self.config.mode == "captions":  # training captions: the templates fill what is missing
                fill, _ = self._template.fill(p.instruction, p.k - len(p.accepted), p.seed, exclude=p.accepted)
            rejected = {reason: p.rejected[reason] for reason in REASONS if p.rejected[reason]}
            variations = p.accepted + fill
            missing = p.k - len(variations)
            results.append(VariationResult(p.instruction, variations, rejected, len(fill), self.settings(), missing))
        return results

    def _take(self, pending: _Pending, text: str) -> None:
        lines = parse_generation(text)
        if not lines:
            pending.rejected["empty"] += 1
        for line in lines:
            if len(pending.accepted) >= pending.k:
                break  # lines after the k-th are neither kept nor judged
            line = _tidy(line, lowercase=self.config.mode == "captions")
            reason = check_variation(pending.instruction, line, self.config.guardrails, accepted=pending.accepted)
            if reason is None:
                pending.accepted.append(line)
            else:
                pending.rejected[reason] += 1

"""The eval job's config: pydantic models loaded from YAML on top of ``eval/presets/defaults.yaml``.

Prompts, decoding settings, window sizes, n-gram length and batch sizes live in the defaults
file, never here; the user's file names the checkpoints and the eval sets and may override any key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from core.config import StrictModel, load_layered, read_yaml
from core.errors import ConfigError
from core.local_copy import local_file_beside
from core.llm.settings import EndpointConfig, LLMSettings, RayActorPoolConfig, SamplingConfig, with_endpoint_defaults
from core.ray_runtime import RayConfig

DEFAULTS = Path(__file__).parent / "presets" / "defaults.yaml"


class CheckpointConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Label in the report, e.g. base, cpt, sft, dpo.")
    path: str = Field(description="A local model directory (save_pretrained), or a LoRA adapter directory.")
    base: str | None = Field(None, description="For an adapter: the base model directory it applies to "
                                               "(default: the base named in adapter_config.json).")
    tokenizer: str | None = Field(None, description="Tokenizer directory; default: the checkpoint's own, then base's.")


class EvalRayConfig(RayConfig):
    enabled: bool | Literal["auto"] = Field(
        description="true: model actors on Ray (one model copy each, kept for every suite of a checkpoint); false: "
                    "the same scorers in this process; auto: this process when no GPU is visible here, "
                    "num_gpus_per_actor is 0 and the work is at most in_process_max_items, else Ray.")
    in_process_max_items: int = Field(ge=0, description="For enabled: auto: the most eval items x checkpoints scored "
                                                        "in this process (starting Ray and its actors costs more "
                                                        "than small work on a CPU).")
    concurrency: int = Field(gt=0, description="Model actors (one model copy each), reused by every suite of a "
                                               "checkpoint.")
    batch_size: int = Field(gt=0, description="Items per actor call.")
    num_cpus_per_actor: float = Field(gt=0)
    num_gpus_per_actor: float = Field(ge=0)
    stall_timeout_s: float | None = Field(gt=0, description="Fail, naming the suite, when no batch of results "
                                                          "arrives for this long (model loading included).")


class ModelRuntimeConfig(StrictModel):
    device: Literal["auto", "cpu", "cuda"] = Field(description="auto: cuda when the actor has a GPU.")
    dtype: Literal["fp32", "bf16", "fp16"]
    forward_batch_size: int = Field(gt=0, description="Sequences per forward pass.")


class TextSetConfig(StrictModel):
    path: str = Field(description="Parquet file or directory of documents; a factory run directory means its "
                                  "documents/, a prepare run directory its validation/ split.")
    id_column: str = "id"      # the corpus-document contract's column names
    text_column: str = "text"
    limit: int | None = Field(None, gt=0, description="Use only the first N rows.")
    tokenizer: str | None = Field(None, description="For a packed prepare output (input_ids, doc_lengths): the "
                                                    "tokenizer that decodes its documents back to text.")


class PerplexityConfig(StrictModel):
    enabled: bool
    context_length: int | None = Field(gt=1, description="Tokens per window; null: the model's max positions.")
    stride: int = Field(gt=0, description="Tokens the window advances; each token is scored once, with up to "
                                          "context_length - stride tokens of earlier context. Equal to "
                                          "context_length: non-overlapping windows, whose first tokens (no "
                                          "context) are not scored. With context_length null it is capped at the "
                                          "model's max positions.")
    add_special_tokens: bool = Field(description="Let the tokenizer add its BOS (if any) to each document.")
    sets: dict[str, TextSetConfig] = Field(description="e.g. domain: the prepare validation split's documents; "
                                                       "general: held-out general text.")

    @model_validator(mode="after")
    def _stride_fits_the_window(self):
        # a stride past the window would skip tokens; refused here, before any model loads
        if self.context_length is not None and self.stride > self.context_length:
            raise ValueError(f"perplexity.stride ({self.stride}) is larger than perplexity.context_length "
                             f"({self.context_length}): tokens between windows would never be scored; set "
                             "stride <= context_length (equal: non-overlapping windows)")
        return self


class ChoiceSetConfig(StrictModel):
    path: str
    # MMLU's column names (as in eval/sample_data)
    question_column: str = "question"
    choices_column: str = Field("choices", description="list<string> of the choices.")
    answer_column: str = Field("answer", description="Index of the right choice (0-based).")
    subject_column: str | None = "subject"
    id_column: str | None = Field(None, description="Default: the row number.")
    limit: int | None = Field(None, gt=0)


class ChoiceConfig(StrictModel):
    enabled: bool
    prompt: str = Field(description="Context before each choice; fields {question}, {subject} (underscores as "
                                    "spaces), {choices}.")
    continuation: str = Field(description="What is scored after the prompt; field {choice}.")
    add_special_tokens: bool = Field(description="Let the tokenizer add its BOS (if it adds one) before the prompt. "
                                                 "It changes picks; lm-evaluation-harness follows the tokenizer "
                                                 "since 0.4.10 (true), earlier versions never added it (false).")
    sets: dict[str, ChoiceSetConfig]


class GenerationSetConfig(StrictModel):
    path: str
    id_column: str = "id"
    prompt: str = Field(description="Prompt template over the row's columns, e.g. 'Title: {title}\\nAbstract:'.")
    reference_column: str
    limit: int | None = Field(None, gt=0)


class DecodingConfig(StrictModel):
    """One decoding setting for every checkpoint, recorded in the report."""

    max_new_tokens: int = Field(gt=0)
    do_sample: bool
    temperature: float = Field(gt=0)
    top_p: float = Field(gt=0, le=1)
    chat_template: bool = Field(description="Wrap the prompt as a user turn with the tokenizer's chat template "
                                            "(when it has one).")
    max_prompt_tokens: int = Field(gt=0, description="Longer prompts keep their last tokens.")


class GenerationConfig(StrictModel):
    enabled: bool
    sets: dict[str, GenerationSetConfig]


class JudgePromptsConfig(StrictModel):
    path: str
    id_column: str = "id"
    prompt_column: str = "prompt"
    limit: int | None = Field(None, gt=0)


class JudgeConfig(StrictModel):
    enabled: bool
    endpoint: EndpointConfig | None = None
    cache_path: str | None = Field(description="SQLite answer cache; null = <output_dir>.judge-cache.sqlite.")
    prompts: JudgePromptsConfig | None = None
    pairs: list[tuple[str, str]] = Field(description="Checkpoint pairs [a, b]: the win rate of a over b.")
    system: str
    template: str = Field(description="Fields {question}, {answer_1}, {answer_2}; the judge answers JSON "
                                      '{"winner": "1" | "2" | "tie", "reason": "..."}.')
    prompt_version: str = Field(description="Part of every cached request's key: change it when the template changes.")
    sampling: SamplingConfig
    max_parse_retries: int = Field(ge=0, description="Ask again when a verdict cannot be read, up to this many "
                                                     "times (each ask cached).")
    actors: int = Field(gt=0, description="Judge actors when ray.enabled.")
    batch_size: int = Field(gt=0)


class TrainingDataConfig(StrictModel):
    path: str = Field(description="A factory, SFT or preference output directory, or Parquet files.")
    kind: Literal["auto", "documents", "sft", "preferences"] = Field(
        "auto", description="auto: from the columns (text / messages / prompt+chosen+rejected).")


class DecontaminationConfig(StrictModel):
    enabled: bool
    ngram: int = Field(gt=0, description="Words per n-gram (13 as in GPT-3's contamination study).")
    decontaminate: bool = Field(description="Remove contaminated items before scoring (they are listed either way).")
    training_data: list[TrainingDataConfig]
    batch_size: int = Field(gt=0, description="Training rows per batch.")
    in_process_max_rows: int = Field(ge=0, description="A training dataset of at most this many rows is scanned in "
                                                       "this process; a larger one with Ray Data (when ray is on).")


class LmEvalConfig(StrictModel):
    enabled: bool
    tasks: list[str]
    include_path: str | None = Field(description="Directory of your own task YAMLs (offline tasks).")
    limit: int | None = Field(gt=0)
    batch_size: int = Field(gt=0)
    num_fewshot: int | None = Field(ge=0)


class EvalConfig(StrictModel):
    output_dir: str
    seed: int
    confidence: float = Field(gt=0, lt=1, description="Level of every interval in the report.")
    max_items: int = Field(gt=0, description="Largest eval set read (items are held on the driver for the report "
                                             "and decontamination); use `limit` to sample a larger one.")
    checkpoints: list[CheckpointConfig] = Field(min_length=1)
    ray: EvalRayConfig
    model: ModelRuntimeConfig
    decoding: DecodingConfig
    perplexity: PerplexityConfig
    multiple_choice: ChoiceConfig
    generation: GenerationConfig
    judge: JudgeConfig
    decontamination: DecontaminationConfig
    lm_eval: LmEvalConfig

    @model_validator(mode="after")
    def _names_are_known(self):
        names = [c.name for c in self.checkpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"checkpoints: names must be unique, got {names}")
        for a, b in self.judge.pairs:
            for name in (a, b):
                if name not in names:
                    raise ValueError(f"judge.pairs: {name!r} is not a checkpoint (checkpoints: {names})")
            if a == b:
                raise ValueError(f"judge.pairs: [{a}, {b}] compares a checkpoint with itself")
        if self.judge.enabled and (self.judge.endpoint is None or self.judge.prompts is None or not self.judge.pairs):
            raise ValueError("judge: enabled needs endpoint, prompts and pairs")
        return self

    def checkpoint(self, name: str) -> CheckpointConfig:
        return next(c for c in self.checkpoints if c.name == name)

    def judge_settings(self) -> LLMSettings:
        cache = Path(self.judge.cache_path) if self.judge.cache_path else \
            local_file_beside(self.output_dir, ".judge-cache.sqlite")
        # every key of the job's ray: section, not a default that init_ray would warn differs from the Ray in force
        shared = {key: getattr(self.ray, key) for key in RayConfig.model_fields}
        pool = RayActorPoolConfig(enabled=self.ray.enabled is True, **shared, actors=self.judge.actors,
                                  batch_size=self.judge.batch_size)
        return LLMSettings({"judge": self.judge.endpoint}, cache, self.seed, pool)


def endpoint_defaults_for_judge(data: dict) -> dict:
    """``judge.endpoint`` gets the same transport defaults as synth's endpoints."""
    judge = dict(data.get("judge") or {})
    defaults = data.pop("endpoint_defaults", {})
    if judge.get("endpoint"):
        judge["endpoint"] = with_endpoint_defaults({"endpoint_defaults": defaults,
                                                    "endpoints": {"judge": judge["endpoint"]}})["endpoints"]["judge"]
    return {**data, "judge": judge}


def load_eval_config(path: str | Path, overrides: dict | None = None) -> EvalConfig:
    config = load_layered(EvalConfig, path, [read_yaml(DEFAULTS)], overrides, endpoint_defaults_for_judge)
    if config.judge.enabled and config.judge.endpoint.api_key_env:
        import os

        if not os.environ.get(config.judge.endpoint.api_key_env):
            raise ConfigError(f"{path}: judge.endpoint.api_key_env: environment variable "
                              f"{config.judge.endpoint.api_key_env} is not set")
    return config

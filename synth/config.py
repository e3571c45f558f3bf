"""The synth jobs' config: pydantic models loaded from YAML on top of ``synth/presets/defaults.yaml``.

Numbers (concurrency, timeouts, retry schedule, sampling, grounding threshold) and the task
list live in the defaults file, never here; the user's file has the last word.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from core.config import StrictModel, load_layered, read_yaml
from core.errors import ConfigError
from core.local_copy import local_file_beside
from core.llm.settings import EndpointConfig, LLMSettings, RayActorPoolConfig, SamplingConfig, with_endpoint_defaults
from quality.config import GateSettings

DEFAULTS = Path(__file__).parent / "presets" / "defaults.yaml"
PROMPTS_DIR = Path(__file__).parent / "prompts"


class InputConfig(StrictModel):
    path: str = Field(description="Parquet file or directory; a factory output dir means its documents/.")
    id_column: str
    text_column: str
    title_column: str | None = Field(description="Optional title column; else `title` in the JSON meta column.")
    limit: int | None = Field(None, gt=0, description="Use only the first N rows by id (smoke runs).")


class TaskConfig(StrictModel):
    task_type: str = Field(description="Label written into the task_type column.")
    template: str = Field(description="Prompt template name: synth/prompts/<template>.yaml or prompt_dir.")
    turns: int = Field(gt=0, description="1 = single-turn, more = a multi-turn conversation.")


class VariantConfig(StrictModel):
    """A robustness variant of every example: its first instruction rewritten by an LLM, or typos added locally."""

    name: str
    template: str | None = None
    params: dict[str, str] = Field(default_factory=dict, description="Extra template fields, e.g. language.")
    typo_rate: float | None = Field(None, gt=0, le=0.5)

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.template is None) == (self.typo_rate is None):
            raise ValueError(f"variant {self.name!r}: give exactly one of template (LLM rewrite) or typo_rate")
        return self


class SftConfig(StrictModel):
    generator: str = Field(description="Endpoint name that writes the examples.")
    sampling: SamplingConfig
    tasks: list[TaskConfig] = Field(min_length=1)
    variants: list[VariantConfig]
    grounding_min_overlap: float = Field(
        ge=0, le=1, description="Share of an answer's content words that must occur in the source document."
    )


class GeneratorConfig(StrictModel):
    endpoint: str
    temperature: float = Field(ge=0)


class PreferencesConfig(StrictModel):
    input: InputConfig | None = Field(None, description="SFT output to take prompts from (id/messages columns).")
    generators: list[GeneratorConfig] = Field(min_length=2, description="Each gives one candidate response.")
    respond_template: str
    max_tokens: int = Field(gt=0)
    judge: str = Field(description="Endpoint name of the judge.")
    judge_template: str
    judge_sampling: SamplingConfig
    max_pairs_per_prompt: int = Field(gt=0)
    review_status: str = Field(description="Initial review status of every triple (the review app moves it).")


class SynthConfig(StrictModel):
    output_dir: str
    cache_path: str | None = Field(description="SQLite answer cache; null = <output_dir>.cache.sqlite (for an "
                                               "s3:// output_dir: in ~/.cache/domain-factory/state).")
    prompt_dir: str | None = Field(description="Extra template directory searched before synth/prompts.")
    seed: int
    max_parse_retries: int = Field(ge=0, description="Ask again when an answer is malformed or off-schema, up to "
                                                     "this many times, before the item is rejected.")
    endpoints: dict[str, EndpointConfig] = Field(min_length=1)
    min_yield: float = Field(ge=0, le=1, description="The share of planned examples (sft: documents x tasks; "
                             "preferences: prompts x pairs per prompt) that must survive; below it the run fails, "
                             "exit 1, naming the top reject reasons, and publishes nothing.")
    input: InputConfig | None = None
    ray: RayActorPoolConfig
    sft: SftConfig | None = None
    preferences: PreferencesConfig | None = None
    quality: GateSettings = GateSettings()

    def cache_file(self) -> Path:
        return Path(self.cache_path) if self.cache_path else local_file_beside(self.output_dir, ".cache.sqlite")

    def llm_settings(self) -> LLMSettings:
        return LLMSettings(self.endpoints, self.cache_file(), self.seed, self.ray)

    def template_dirs(self) -> list[Path]:
        return ([Path(self.prompt_dir)] if self.prompt_dir else []) + [PROMPTS_DIR]


def check_references(config: SynthConfig, job: str, source: str) -> None:
    """Endpoint names, API key env vars and inputs a job needs, checked before any work."""
    if job == "sft":
        if config.input is None or config.sft is None:
            raise ConfigError(f"{source}: input and sft: required for `synth sft`")
        names = [config.sft.generator]
    else:
        if config.preferences is None:
            raise ConfigError(f"{source}: preferences: required for `synth preferences`")
        names = [g.endpoint for g in config.preferences.generators] + [config.preferences.judge]
        if config.preferences.input is None:
            raise ConfigError(f"{source}: preferences.input: required for `synth preferences` (an SFT output)")
    for name in names:
        if name not in config.endpoints:
            raise ConfigError(f"{source}: endpoint {name!r} is used by {job} but not defined under endpoints "
                              f"(defined: {sorted(config.endpoints)})")
        env = config.endpoints[name].api_key_env
        if env and not os.environ.get(env):
            raise ConfigError(f"{source}: endpoints.{name}.api_key_env: environment variable {env} is not set")


JOB_SECTIONS = {"sft": ("input", "sft"), "preferences": ("preferences",)}


def job_defaults(user: dict, job: str) -> list[dict]:
    """defaults.yaml without the sections of the other job: they would not identify this run."""
    defaults = read_yaml(DEFAULTS)
    for section in ("input", "sft", "preferences"):
        if section not in user and section not in JOB_SECTIONS[job]:
            defaults.pop(section, None)
    return [defaults]


def load_synth_config(path: str | Path, job: str, overrides: dict | None = None) -> SynthConfig:
    config = load_layered(SynthConfig, path, lambda user: job_defaults(user, job), overrides, with_endpoint_defaults)
    check_references(config, job, str(path))
    return config

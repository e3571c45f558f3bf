"""lm-evaluation-harness, when its optional extra is installed (``pip install -e '.[lm-eval]'``): the
same checkpoints through its standard tasks (or your own task YAMLs in ``lm_eval.include_path``), their
scores joining the report. Runs in the driver process: lm-eval schedules its own batches."""
from __future__ import annotations

import importlib.util

from core import progress
from core.errors import ConfigError
from eval.checkpoints import adapter_base, is_adapter, model_dir, tokenizer_dir
from eval.config import EvalConfig


def available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def model_args(checkpoint, dtype: str) -> dict:
    torch_dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype]
    if is_adapter(checkpoint.path):
        if is_adapter(adapter_base(checkpoint)):
            raise ConfigError(f"lm_eval: checkpoint {checkpoint.name} is an adapter on another adapter "
                              f"({adapter_base(checkpoint)}), which lm-eval cannot load; merge it first "
                              "(python -m train merge) and evaluate the merged model")
        return {"pretrained": adapter_base(checkpoint), "peft": model_dir(checkpoint),
                "tokenizer": tokenizer_dir(checkpoint), "dtype": torch_dtype}
    return {"pretrained": model_dir(checkpoint), "tokenizer": tokenizer_dir(checkpoint), "dtype": torch_dtype}


def scores(results: dict) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} from lm-eval's results, its ",none" filter suffix dropped."""
    table = {}
    for task, metrics in results.get("results", {}).items():
        table[task] = {name.split(",")[0]: float(value) for name, value in metrics.items()
                       if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "alias"}
    return table


def run(config: EvalConfig) -> dict:
    if not available():
        raise ConfigError("lm_eval.enabled: the lm-evaluation-harness is not installed "
                          "(pip install -e '.[lm-eval]'), or set lm_eval.enabled: false")
    import lm_eval
    from lm_eval.tasks import TaskManager

    settings = config.lm_eval
    manager = TaskManager(include_path=settings.include_path) if settings.include_path else TaskManager()
    device = {"auto": None, "cpu": "cpu", "cuda": "cuda"}[config.model.device]
    results = {}
    for checkpoint in config.checkpoints:
        progress.say(f"  lm-eval {', '.join(settings.tasks)} / {checkpoint.name}")
        output = lm_eval.simple_evaluate(
            model="hf", model_args=model_args(checkpoint, config.model.dtype), tasks=list(settings.tasks),
            num_fewshot=settings.num_fewshot, batch_size=settings.batch_size, limit=settings.limit, device=device,
            task_manager=manager, random_seed=config.seed, log_samples=False, bootstrap_iters=1000,
        )
        results[checkpoint.name] = scores(output)
    return results

"""``ray.enabled: auto``: where the model work runs. Starting Ray and a model actor per checkpoint costs
10-20 s each, which dwarfs small work on a CPU; a GPU, or much work, is worth it."""
from __future__ import annotations

import pyarrow as pa

from core import progress
from eval.config import EvalConfig, EvalRayConfig

Sets = dict[tuple[str, str], pa.Table]


def work_size(config: EvalConfig, sets: Sets) -> int:
    """Eval items x the checkpoints that score them (the judge's prompts: only the paired checkpoints answer)."""
    paired = {name for pair in config.judge.pairs for name in pair}
    return sum(table.num_rows * (len(paired) if suite == "judge" else len(config.checkpoints))
               for (suite, _), table in sets.items())


def gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def on_ray(ray: EvalRayConfig, size: int) -> tuple[bool, str]:
    """``auto``'s choice for ``size`` items x checkpoints: (model actors on Ray?, the reason, as said)."""
    if ray.num_gpus_per_actor > 0 or gpu_visible():
        return True, "a GPU is there to use"
    if size > ray.in_process_max_items:
        return True, f"{size} items x checkpoints > ray.in_process_max_items ({ray.in_process_max_items})"
    return False, (f"no GPU, {size} items x checkpoints <= ray.in_process_max_items {ray.in_process_max_items}; "
                   "ray.enabled: true forces Ray")


def placed(config: EvalConfig, sets: Sets) -> EvalConfig:
    """The config with ``ray.enabled`` decided (true or false), the choice and its reason said."""
    ray = config.ray
    if ray.enabled != "auto":
        return config
    use_ray, why = on_ray(ray, work_size(config, sets))
    progress.say(f"ray.enabled: auto -> {'model actors on Ray' if use_ray else 'scoring in this process'} ({why})")
    return config.model_copy(update={"ray": ray.model_copy(update={"enabled": use_ray})})

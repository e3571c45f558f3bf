"""Per-GPU memory of a training plan, before a GPU is booked: ``python -m train plan CONFIG``.

Model states come from DeepSpeed's own estimators (``estimate_zero2/3_model_states_mem_needs``) for
the trainable parameters; frozen weights (LoRA's base, QLoRA's 4-bit base) are counted at their
storage width; activations use the per-layer estimate of Korthikanti et al. (2022), "Reducing
Activation Recomputation in Large Transformer Models"; a fixed overhead covers the CUDA context and
allocator. Only the model's config is read (parameter shapes on the meta device), never its weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core import progress
from core.adapters import model_chain
from core.errors import ConfigError
from train.config import TrainConfig

GB = 1024 ** 3
# QLoRA's NF4 with double quantisation: 4 bits per weight + an 8-bit absmax per 64 weights, itself
# quantised per 256 blocks (Dettmers et al. 2023): about 4.127 bits
NF4_BYTES_PER_PARAM = 4.127 / 8


@dataclass
class ModelShape:
    total_params: int
    largest_param: int          # DeepSpeed ZeRO-3 gathers one parameter (layer) at a time
    linear_params: int          # weights of the transformer's nn.Linear layers (what QLoRA quantises)
    lora_params: int            # the adapter's parameters at the config's rank and targets
    hidden: int
    layers: int
    heads: int
    vocab: int


@dataclass
class MemoryPlan:
    gpus: int
    weights_gb: float           # frozen or 16-bit working weights held on each GPU
    states_gb: float            # trainable parameters' gradients and optimizer states (DeepSpeed's estimate)
    activations_gb: float
    overhead_gb: float
    cpu_gb: float               # host memory the offload needs per node (DeepSpeed's estimate)
    gpu_memory_gb: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.states_gb + self.activations_gb + self.overhead_gb

    @property
    def fits(self) -> bool | None:
        return None if self.gpu_memory_gb is None else self.total_gb <= self.gpu_memory_gb


def model_config_dir(config: TrainConfig) -> str:
    """Where the model's config.json is: the model, or an adapter's base (at the end of a chain of adapters)."""
    return model_chain(config.model.path)[-1]


def model_shape(config: TrainConfig) -> ModelShape:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        model_config = AutoConfig.from_pretrained(model_config_dir(config))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.path: cannot read the model's config from {config.model.path}: {exc}") from None
    with torch.device("meta"):  # shapes only: no memory, no weights read
        model = AutoModelForCausalLM.from_config(model_config)
    params = list(model.parameters())
    targets = config.model.lora.target_modules
    linear = lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            linear += module.weight.numel()
            if targets == "all-linear" or name.rsplit(".", 1)[-1] in targets:
                lora += config.model.lora.r * (module.in_features + module.out_features)
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    return ModelShape(
        total_params=sum(p.numel() for p in params), largest_param=max(p.numel() for p in params),
        linear_params=linear, lora_params=lora, hidden=text.hidden_size, layers=text.num_hidden_layers,
        heads=text.num_attention_heads, vocab=text.vocab_size,
    )


def model_state_bytes(trainable: int, largest: int, config: TrainConfig, gpus: int) -> tuple[float, float]:
    """(GPU bytes, CPU bytes) for the trainable parameters' 16-bit copy, gradients and Adam states, from
    DeepSpeed's estimators (mixed precision; per GPU)."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    ds = config.deepspeed
    stage = ds.zero_stage if ds.enabled else 0
    offload_optimizer, offload_param = ds.offload_optimizer != "none", ds.offload_param != "none"
    if stage == 3:
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(trainable, largest, num_gpus_per_node=gpus,
                                                            cpu_offload=offload_optimizer,
                                                            cpu_offload_params=offload_param)
        return gpu, cpu
    # stage 2's estimate partitions gradients and optimizer states over the GPUs; stage 1 partitions only the
    # optimizer states (DeepSpeed has no estimator for it) and stage 0 nothing
    cpu, gpu = estimate_zero2_model_states_mem_needs(trainable, num_gpus_per_node=1 if stage == 0 else gpus,
                                                     cpu_offload=offload_optimizer)
    if stage == 1 and gpus > 1:
        gpu += 2 * trainable * (1 - 1 / gpus)  # 16-bit gradients are whole on every GPU
    return gpu, cpu


def activation_bytes(shape: ModelShape, config: TrainConfig, seq_len: int) -> float:
    """Activations of one micro-batch in 16-bit: s*b*h*(34 + 5*a*s/h) per layer without recomputation
    (the attention-score term vanishes with fused sdpa/flash attention); with gradient checkpointing each
    layer keeps only its input and one layer is recomputed at a time; plus the logits and their gradient."""
    s, b, h = seq_len, config.optim.per_device_batch_size, shape.hidden
    scores = 5 * shape.heads * s / h if config.model.attn_implementation == "eager" else 0
    per_layer = s * b * h * (34 + scores)
    if config.model.gradient_checkpointing:
        layers = shape.layers * s * b * h * 2 + per_layer
    else:
        layers = shape.layers * per_layer
    logits = s * b * shape.vocab * (2 + 4 + 4)  # 16-bit logits, their fp32 copy for the loss, and its gradient
    return layers + logits


def plan_memory(config: TrainConfig, shape: ModelShape | None = None) -> MemoryPlan:
    shape = shape or model_shape(config)
    plan_settings = config.plan
    gpus = config.scaling.num_workers
    finetune = config.model.finetune
    notes = []
    if finetune == "full":
        trainable, frozen_bytes = shape.total_params, 0.0
    else:
        trainable = shape.lora_params
        if finetune == "qlora":
            frozen_bytes = shape.linear_params * NF4_BYTES_PER_PARAM + (shape.total_params - shape.linear_params) * 2
        else:
            frozen_bytes = shape.total_params * 2.0
        if config.deepspeed.enabled and config.deepspeed.zero_stage == 3 and finetune == "lora":
            frozen_bytes /= gpus  # ZeRO-3 partitions the frozen base too
    gpu_states, cpu_states = model_state_bytes(trainable, shape.largest_param if finetune == "full" else
                                               max(1, shape.lora_params // max(1, shape.layers)), config, gpus)
    if config.run.precision == "fp32":
        # 4-byte weights, 4-byte gradients and 8 bytes of Adam states: 16 bytes a parameter against the 20
        # of mixed precision (16-bit weights and gradients, fp32 master weights, gradients and states)
        gpu_states *= 16 / 20
        notes.append("fp32: model states at 16 bytes a parameter, not mixed precision's 20")
    seq_len = plan_settings.seq_len or config.data.max_length
    return MemoryPlan(
        gpus=gpus, weights_gb=frozen_bytes / GB, states_gb=gpu_states / GB,
        activations_gb=activation_bytes(shape, config, seq_len) / GB, overhead_gb=plan_settings.overhead_gb,
        cpu_gb=cpu_states / GB, gpu_memory_gb=plan_settings.gpu_memory_gb, notes=notes,
    )


def advice(plan: MemoryPlan, config: TrainConfig) -> list[str]:
    """Which knob to turn, most effective first, when the plan does not fit."""
    tips = []
    if not config.model.gradient_checkpointing and plan.activations_gb > 0.2 * plan.total_gb:
        tips.append("model.gradient_checkpointing: true (activations are "
                    f"{plan.activations_gb:.1f} GB)")
    if config.optim.per_device_batch_size > 1 and plan.activations_gb > 0.1 * plan.total_gb:
        tips.append("a smaller optim.per_device_batch_size, with more gradient_accumulation_steps")
    ds = config.deepspeed
    if plan.gpus > 1 and (not ds.enabled or ds.zero_stage < 3):
        tips.append("deepspeed.zero_stage: 3 (partitions weights, gradients and optimizer states over "
                    f"{plan.gpus} GPUs)")
    if ds.offload_optimizer == "none" and plan.states_gb > 0.3 * plan.total_gb:
        tips.append("deepspeed.offload_optimizer: cpu (with zero_stage >= 1)")
    if config.model.finetune == "full":
        tips.append("model.finetune: lora (or qlora on GPUs with bitsandbytes)")
    elif config.model.finetune == "lora":
        tips.append("model.finetune: qlora (4-bit base)")
    tips.append("more GPUs (scaling.num_workers) or GPUs with more memory")
    return tips


def describe(plan: MemoryPlan, config: TrainConfig) -> str:
    ds = config.deepspeed
    lines = [
        f"memory plan per GPU ({plan.gpus} GPU(s), {config.model.finetune}, "
        f"ZeRO-{ds.zero_stage if ds.enabled else 0}, offload optimizer {ds.offload_optimizer} / params "
        f"{ds.offload_param}, micro-batch {config.optim.per_device_batch_size} x "
        f"{config.plan.seq_len or config.data.max_length} tokens, gradient checkpointing "
        f"{'on' if config.model.gradient_checkpointing else 'off'}):",
        f"  weights (frozen / 16-bit)   {plan.weights_gb:8.1f} GB",
        f"  model states (DeepSpeed)    {plan.states_gb:8.1f} GB",
        f"  activations                 {plan.activations_gb:8.1f} GB",
        f"  overhead                    {plan.overhead_gb:8.1f} GB",
        f"  total                       {plan.total_gb:8.1f} GB",
    ]
    if plan.cpu_gb and (ds.offload_optimizer != "none" or ds.offload_param != "none"):
        lines.append(f"  host memory for the offload {plan.cpu_gb:8.1f} GB per node")
    lines += [f"  note: {note}" for note in plan.notes]
    if plan.fits is None:
        lines.append("  fit: unknown (set plan.gpu_memory_gb to the GPUs' memory to check it)")
    elif plan.fits:
        lines.append(f"  fits in {plan.gpu_memory_gb:g} GB per GPU ({plan.gpu_memory_gb - plan.total_gb:.1f} GB spare)")
    else:
        lines.append(f"  does NOT fit in {plan.gpu_memory_gb:g} GB per GPU; try: " + "; ".join(advice(plan, config)))
    return "\n".join(lines)


def check_plan_fits(config: TrainConfig, force: bool) -> None:
    """What ``train cpt|sft|dpo`` does first on GPUs: refuse a plan that cannot fit, unless forced."""
    if not config.scaling.use_gpu or config.plan.gpu_memory_gb is None:
        return
    plan = plan_memory(config)
    if plan.fits is False:
        message = describe(plan, config)
        if not force:
            raise ConfigError(f"{message}\n(--force runs it anyway)")
        progress.warn(f"{message}\n--force: running anyway")

"""Builders for the tokenizer, the causal LM and the LoRA/QLoRA adapter config, from config."""
from __future__ import annotations

import importlib.util
import logging

import torch

from core.adapters import load_merged, local_path
from train.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}




def build_tokenizer(model: ModelConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(local_path(model.tokenizer or model.path))  # an output: its current run
    if tokenizer.pad_token is None:
        # causal LMs often ship without one; padding positions are masked out of the loss anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def attn_implementation(requested: str) -> str:
    if requested == "flash_attention_2" and not (
        torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None
    ):
        log.warning("flash_attention_2 needs a GPU and the flash-attn package; using sdpa")
        return "sdpa"
    return requested


def quantization_config(config: TrainConfig):
    if config.model.finetune != "qlora":
        return None
    if not torch.cuda.is_available():
        raise RuntimeError("model.finetune: qlora needs a CUDA GPU (4-bit bitsandbytes kernels)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError("model.finetune: qlora needs the bitsandbytes package (pip install bitsandbytes)")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=DTYPES[config.run.precision],
    )


def build_model(config: TrainConfig, path: str | None = None):
    """The causal LM to train; a LoRA output of an earlier stage is merged into its base first."""
    path = path or config.model.path
    kwargs = dict(attn_implementation=attn_implementation(config.model.attn_implementation))
    quant = quantization_config(config)
    if quant is not None:
        kwargs.update(quantization_config=quant, dtype=DTYPES[config.run.precision])
    model = load_merged(path, **kwargs)  # an earlier stage's LoRA output: merged into its base (chains in order)
    # no KV cache in training: with one, transformers skips the packed-sequence (per-document) masks
    model.config.use_cache = False
    return model


def build_peft_config(config: TrainConfig):
    """LoRA settings for trl/peft, or None for full fine-tuning."""
    if config.model.finetune == "full":
        return None
    from peft import LoraConfig

    lora = config.model.lora
    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, task_type="CAUSAL_LM",
    )


def apply_lora(model, config: TrainConfig):
    """CPT has no trl trainer to hand the adapter config to, so peft wraps the model here."""
    peft_config = build_peft_config(config)
    if peft_config is None:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if config.model.finetune == "qlora":
        model = prepare_model_for_kbit_training(model, config.model.gradient_checkpointing)
    elif config.model.gradient_checkpointing:
        # frozen embeddings: checkpointed blocks need an input that requires grad to backprop into LoRA
        model.enable_input_require_grads()
    return get_peft_model(model, peft_config)


def trl_trainer_parts(config: TrainConfig, callbacks) -> dict:
    """What trl's trainers take the same way in every stage: the tokenizer, the LoRA config, the callbacks."""
    return dict(processing_class=build_tokenizer(config.model), peft_config=build_peft_config(config),
                callbacks=list(callbacks))

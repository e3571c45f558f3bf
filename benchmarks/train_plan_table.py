"""The memory plan (`python -m train plan`) for 0.5B, 7B and 70B models, printed as BENCHMARKS.md's table.

    .venv/bin/python benchmarks/train_plan_table.py                  # 2,048 tokens
    .venv/bin/python benchmarks/train_plan_table.py --seq-len 512    # the setting checked against a 7B table

Model configs only (Qwen2.5-0.5B, Llama-2-7B, Llama-2-70B shapes written locally; no weights, no
download); micro-batch 1, gradient checkpointing, bf16.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.config import load_train_config  # noqa: E402
from train.plan import model_shape, plan_memory  # noqa: E402

MODELS = {
    "Qwen2.5-0.5B": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)),
    "Llama-2-7B": ("llama", dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                 num_attention_heads=32, num_key_value_heads=32)),
    "Llama-2-70B": ("llama", dict(vocab_size=32000, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                                  num_attention_heads=64, num_key_value_heads=8)),
}
PLANS = [  # (label, finetune, GPUs, ZeRO stage, optimizer offload)
    ("full, 1 GPU, ZeRO-2", "full", 1, 2, "none"),
    ("full, 8 GPUs, ZeRO-3", "full", 8, 3, "none"),
    ("full, 8 GPUs, ZeRO-3 + CPU offload", "full", 8, 3, "cpu"),
    ("LoRA r16, 1 GPU", "lora", 1, 2, "none"),
    ("QLoRA r16, 1 GPU", "qlora", 1, 2, "none"),
]


def main() -> None:
    import argparse

    from transformers import AutoConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=2048)
    seq_len = parser.parse_args().seq_len

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, (kind, dims) in MODELS.items():
            model_dir = Path(tmp) / name
            AutoConfig.for_model(kind, **dims).save_pretrained(model_dir)
            shape = None
            cells = []
            for _, finetune, gpus, stage, offload in PLANS:
                path = Path(tmp) / "c.yaml"
                path.write_text(yaml.safe_dump({
                    "output_dir": "unused", "run": {"name": "plan"}, "data": {"train": "unused", "max_length": seq_len},
                    "model": {"path": str(model_dir), "finetune": finetune, "gradient_checkpointing": True},
                    "optim": {"per_device_batch_size": 1}, "scaling": {"num_workers": gpus, "use_gpu": True},
                    "deepspeed": {"zero_stage": stage, "offload_optimizer": offload}}))
                config = load_train_config(path, "cpt", check_inputs=False)
                shape = shape or model_shape(config)
                cells.append(f"{plan_memory(config, shape).total_gb:,.1f}")
            rows.append(f"| {name} ({shape.total_params / 1e9:.2f}B) | " + " | ".join(cells) + " |")
        print("| model | " + " | ".join(label for label, *_ in PLANS) + " |")
        print("|---|" + "---:|" * len(PLANS))
        print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Command line: ``python -m train cpt|sft|dpo CONFIG.yaml``, ``merge`` and ``chat-vector``."""
from __future__ import annotations

import argparse
import sys

from factory.common.config_loading import ConfigError
from factory.common.publish import OutputExistsError

EPILOG = """examples:
  python -m train cpt configs/train_cpt.yaml
  ray job submit --working-dir . -- python -m train sft configs/train_sft.yaml
  python -m train merge out/models/sft-lora out/models/sft-merged
  python -m train chat-vector --base BASE --chat CHAT --target out/models/cpt out/models/cpt-chat
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m train",
        description="Train domain LLMs on Ray Train with DeepSpeed: continual pre-training (cpt), "
        "supervised fine-tuning (sft) and preference alignment (dpo), plus LoRA merge and chat vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    helps = {
        "cpt": "continual pre-training on the factory's packed Parquet (input_ids, doc_lengths)",
        "sft": "supervised fine-tuning on the SFT contract (messages), loss on assistant tokens",
        "dpo": "DPO on the preference contract (prompt, chosen, rejected)",
    }
    for stage, text in helps.items():
        sub = commands.add_parser(
            stage, help=text,
            description=f"{text[0].upper()}{text[1:]}. Starts Ray locally, or joins RAY_ADDRESS / ray.address "
            "when set (as under ray job submit). A rerun with the same run.name and run.storage_path resumes "
            "from the latest checkpoint; the final model is published to run.output_dir.",
        )
        sub.add_argument("config", help=f"YAML config on top of train/presets/{stage}.yaml (see configs/train_{stage}.yaml)")
        sub.add_argument("--output-dir", help="override run.output_dir")
        sub.add_argument("--max-steps", type=int, help="override optim.max_steps")
        sub.add_argument("--overwrite", action="store_true",
                         help="replace a model in run.output_dir published by a different config")
    merge = commands.add_parser("merge", help="merge a LoRA adapter into its base model (peft merge_and_unload)")
    merge.add_argument("adapter", help="adapter directory (a LoRA stage's output_dir)")
    merge.add_argument("output", help="directory for the merged full model")
    merge.add_argument("--base", help="base model, if not the one recorded in adapter_config.json")
    vector = commands.add_parser(
        "chat-vector", help="add (chat - base) weight deltas to a CPT model (instruction residual)",
        description="target + scale * (chat - base), parameter by parameter: gives a continually "
        "pre-trained model the instruction following of a chat model of the same base.",
    )
    vector.add_argument("--base", required=True, help="the base model the chat model was tuned from")
    vector.add_argument("--chat", required=True, help="the chat/instruct model")
    vector.add_argument("--target", required=True, help="the CPT model (trained from --base)")
    vector.add_argument("--scale", type=float, default=1.0, help="weight of the chat vector (default 1.0)")
    vector.add_argument("output", help="directory for the resulting model")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command in ("cpt", "sft", "dpo"):
            from train.config import load_train_config
            from train.launch import run

            overrides: dict = {}
            if args.output_dir:
                overrides["run"] = {"output_dir": args.output_dir}
            if args.max_steps:
                overrides["optim"] = {"max_steps": args.max_steps}
            run(load_train_config(args.config, args.command, overrides), overwrite=args.overwrite)
        elif args.command == "merge":
            from train.merge import merge_adapter

            merge_adapter(args.adapter, args.output, base=args.base)
        else:
            from train.merge import chat_vector

            chat_vector(args.base, args.chat, args.target, args.output, scale=args.scale)
    except (ConfigError, OutputExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

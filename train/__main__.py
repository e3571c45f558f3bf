"""Command line: ``python -m train STAGE CONFIG.yaml`` for every registered stage (cpt, sft, dpo, ...),
``merge`` and ``chat-vector``."""
from __future__ import annotations

import argparse
import sys

from core.cli import add_job_arguments, command_parser, output_override, print_config, run_command

EPILOG = """examples:
  python -m train cpt configs/train_cpt.yaml
  ray job submit --working-dir . -- python -m train sft configs/train_sft.yaml
  python -m train plan configs/train_cpt.yaml      # per-GPU memory estimate, before a GPU is booked
  python -m train init my_init.yaml                # a randomly initialised model from a config and a tokenizer
  python -m train merge out/models/sft-lora out/models/sft-merged
  python -m train chat-vector --base BASE --chat CHAT --target out/models/cpt out/models/cpt-chat

A training method (stage) is a module and a preset in train/methods/ (more folders: TRAIN_STAGE_DIRS).
exit codes: 0 done (or already done), 2 bad config or input, or an output that must not be replaced.
"""


def parser() -> argparse.ArgumentParser:
    from train.methods import all_stages

    top, commands = command_parser(
        "python -m train", "Train domain LLMs on Ray Train with DeepSpeed: continual pre-training (cpt), "
        "supervised fine-tuning (sft), preference alignment (dpo) and any other registered stage, "
        "plus LoRA merge and chat vectors.", EPILOG)
    for stage in all_stages().values():
        sub = commands.add_parser(
            stage.name, help=stage.summary,
            description=f"{stage.summary[0].upper()}{stage.summary[1:]}. Starts Ray locally, or joins RAY_ADDRESS / "
            "ray.address when set (as under ray job submit). A rerun with the same run.name and run.storage_path "
            "resumes from the latest checkpoint; the final model is published to output_dir.",
        )
        add_job_arguments(sub, f"YAML config on top of train/presets/base.yaml and the {stage.name} preset "
                               f"(see configs/train_{stage.name}.yaml)")
        sub.add_argument("--max-steps", type=int, help="override optim.max_steps")
        sub.add_argument("--force", action="store_true",
                         help="run even when the memory plan says it does not fit plan.gpu_memory_gb")
    plan = commands.add_parser(
        "plan", help="estimate per-GPU memory of a training config and say whether it fits",
        description="Weights, gradients and optimizer states (DeepSpeed's estimators), activations and overhead "
        "per GPU for the configured model, ZeRO stage, offload, LoRA/QLoRA, micro-batch, sequence length and "
        "gradient checkpointing; reads the model's config only, never its weights. With plan.gpu_memory_gb set it "
        "says whether the run fits, and which knob to turn if not (exit 1).")
    plan.add_argument("config", help="a training config (configs/train_*.yaml)")
    plan.add_argument("--stage", help="the stage whose preset applies (default: the file's stage:, else cpt)")
    plan.add_argument("--gpu-memory-gb", type=float, help="override plan.gpu_memory_gb")
    plan.add_argument("--cluster", help="an autoscaler config (cluster.yaml): refuse (exit 2) a worker shape none "
                      "of its node types can hold")
    init = commands.add_parser(
        "init", help="build a randomly initialised model from a config and a tokenizer (no download)",
        description="A transformers config class and its sizes (train/presets/init.yaml) plus a tokenizer directory "
        "(e.g. a prepare run's tokenizer/) give a new model with random weights, published to output_dir with the "
        "tokenizer (a ChatML chat template is added when it has none): the base of a smoke run or of training "
        "from scratch.")
    add_job_arguments(init, "YAML on top of train/presets/init.yaml (output_dir, tokenizer, architecture)")
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


def dispatch(args: argparse.Namespace) -> int | None:
    if args.command == "merge":
        from train.merge import merge_adapter

        merge_adapter(args.adapter, args.output, base=args.base)
    elif args.command == "plan":
        return plan_command(args)
    elif args.command == "init":
        from train.init_model import load_init_config, run_init_model

        init = load_init_config(args.config, output_override(args))
        if args.print_config:
            return print_config(f"python -m train init {args.config}", init,
                                [f"a randomly initialised {init.architecture.get('config_class')} (seed {init.seed}) with the "
                                 f"tokenizer {init.tokenizer}, published to {init.output_dir}"])
        run_init_model(init, overwrite=args.overwrite)
    elif args.command == "chat-vector":
        from train.merge import chat_vector

        chat_vector(args.base, args.chat, args.target, args.output, scale=args.scale)
    else:
        from train.config import load_train_config
        from train.launch import run_training

        overrides = output_override(args) or {}
        if args.max_steps:
            overrides["optim"] = {**overrides.get("optim", {}), "max_steps": args.max_steps}
        # --print-config describes a run whose inputs an earlier step has yet to write
        config = load_train_config(args.config, args.command, overrides, check_inputs=not args.print_config)
        if args.print_config:
            from train.describe import train_plan

            return print_config(f"python -m train {args.command} {args.config}", config, train_plan(config))
        run_training(config, overwrite=args.overwrite, force=args.force)
    return None


def plan_command(args: argparse.Namespace) -> int:
    from core.config import read_yaml
    from train.config import load_train_config
    from train.plan import describe, plan_memory

    stage = args.stage or read_yaml(args.config).get("stage") or "cpt"
    overrides = {"plan": {"gpu_memory_gb": args.gpu_memory_gb}} if args.gpu_memory_gb else None
    config = load_train_config(args.config, stage, overrides, check_inputs=False)
    if args.cluster:  # offline: the worker shape against the node types the cluster config offers
        from core.cluster_shape import format_shape, offer_from_cluster_config, refuse_unplaceable
        from train.launch import worker_shape

        offer = offer_from_cluster_config(args.cluster)
        refuse_unplaceable(worker_shape(config), "scaling.resources_per_worker", offer)
        print(f"workers: {config.scaling.num_workers} x {format_shape(worker_shape(config))}, each fits a node type "
              f"of {args.cluster} ({offer.describe()})")
    plan = plan_memory(config)
    print(describe(plan, config))
    return 1 if plan.fits is False else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(lambda: dispatch(args))


if __name__ == "__main__":
    sys.exit(main())

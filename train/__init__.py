"""train: CPT, SFT and DPO on Ray Train with DeepSpeed (transformers, peft, trl); see README ## Train.

Modules, one idea each: config (pydantic + presets), data (Ray Data inputs and contracts),
packing (per-document attention for packed CPT), model (tokenizer/model/LoRA builders),
deepspeed_config, arguments, callbacks (metrics, TensorBoard, Ray reporting), worker (resume),
cpt/sft/dpo (the recipes), launch (the TorchTrainer driver), merge (LoRA merge, chat vectors).
"""

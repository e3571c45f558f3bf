"""train: CPT, SFT and DPO on Ray Train with DeepSpeed (transformers, peft, trl); see README ## Train.

Modules, one idea each: methods/ (one module and one preset per training method, the registry),
method (what a training method declares), config (pydantic + presets), data (Ray Data inputs and contracts),
document_attention (position ids and targets of packed CPT rows), model (tokenizer/model/LoRA
builders), deepspeed_config, arguments, callbacks (metrics, TensorBoard, Ray reporting), worker
(what every training loop shares: setup, data, fit and resume), launch (the TorchTrainer driver), merge
(LoRA merge, chat vectors).
"""

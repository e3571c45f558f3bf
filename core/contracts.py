"""The data contracts (DESIGN.md): the Parquet schemas jobs hand to each other.

A job reads another job's output through these columns only, never through its code.
"""
from __future__ import annotations

import pyarrow as pa

# factory output: the corpus document (id, text, source, meta) plus its domain and duplicate cluster
FACTORY_DOCUMENTS = pa.schema([
    ("id", pa.string()), ("text", pa.string()), ("source", pa.string()), ("domain", pa.string()),
    ("meta", pa.string()), ("dup_cluster", pa.string()), ("dup_cluster_size", pa.int64()),
])

# every dropped document or item, with the stage that dropped it and why: nothing vanishes
REJECTS = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("detail", pa.string()),
])
# synth's rejects also keep the model's raw answer, so a malformed one can be inspected
SYNTH_REJECTS = REJECTS.append(pa.field("raw", pa.string()))

# what a model reads of a packed row: its tokens, and the tokens per document piece (each piece attends
# only to itself)
PACKED_CPT_INPUTS = pa.schema([
    ("input_ids", pa.list_(pa.int32())),
    ("doc_lengths", pa.list_(pa.int32())),
])
# packed continual pre-training rows: doc_lengths (tokens per document piece) sum to n_tokens
PACKED_CPT = pa.schema([
    *PACKED_CPT_INPUTS,
    ("n_tokens", pa.int32()),
    ("doc_ids", pa.list_(pa.string())),
    ("doc_sources", pa.list_(pa.string())),
])

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))

SFT = pa.schema([
    ("id", pa.string()), ("task_type", pa.string()), ("variant", pa.string()), ("messages", MESSAGES),
    ("source_doc_id", pa.string()), ("generator", pa.string()), ("prompt_version", pa.string()),
])

PREFERENCE = pa.schema([
    ("id", pa.string()), ("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()),
    ("chosen_model", pa.string()), ("rejected_model", pa.string()),
    ("chosen_temperature", pa.float64()), ("rejected_temperature", pa.float64()),
    ("chosen_score", pa.float64()), ("rejected_score", pa.float64()),
    ("judge_model", pa.string()), ("judge_rationale", pa.string()), ("review_status", pa.string()),
    ("source_id", pa.string()), ("source_doc_id", pa.string()), ("prompt_version", pa.string()),
])

# the review app's export: preference triples annotators approved (chosen/rejected as they decided, edits
# applied), with who decided and how many votes the majority had
REVIEWED_PREFERENCE = PREFERENCE.append(pa.field("annotators", pa.list_(pa.string()))).append(
    pa.field("review_votes", pa.int32()))

# Where a published run keeps its rows, {data folder: the readers that take it}: a config may name a run's
# directory and mean its data folder, and each reader takes the first folder, in this order, that the run has.
# One table, so a reader never takes what it must not: training never reads a held-out split, evaluation never
# a training split. (prepare writes train/ and validation/ in PACKED_CPT, factory documents/, synth sft/ and
# preferences/, the review app's export preferences/.)
DATA_FOLDERS = {
    "train": ("training",),
    "validation": ("evaluation",),
    "documents": ("evaluation", "decontamination", "synthesis"),
    "sft": ("training", "evaluation", "decontamination", "synthesis"),
    "preferences": ("training", "evaluation", "decontamination", "review"),
    "reviews": ("review",),
}


def data_folders(reader: str) -> tuple[str, ...]:
    """The data folders ``reader`` (training, evaluation, decontamination, synthesis, review) takes, first first."""
    folders = tuple(folder for folder, readers in DATA_FOLDERS.items() if reader in readers)
    if not folders:
        raise ValueError(f"no data folder is read by {reader!r}")
    return folders

"""Eval sets read into small tables of items, one shape per suite, each row keyed by ``item_id``.

Eval sets are held-out samples, held on the driver for decontamination and the report: a set over
``max_items`` rows is refused (sample it with ``limit``), which bounds the driver's memory.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from core.adapters import local_path
from core.contracts import PACKED_CPT_INPUTS, data_folders
from core.errors import ConfigError, InputError
from core.parquet import open_parquet, parquet_files, published_data_dir, require_columns
from core.storage import check_input

# a prepare run's held-out split (never its training split), a factory run's documents, SFT or preference rows
DATA_FOLDERS = data_folders("evaluation")


def set_files(path: str, key: str) -> list:
    """An eval set's Parquet files; a URI's bucket, key and credentials are checked first, naming ``key``."""
    check_input(path, key)
    return parquet_files(published_data_dir(path, DATA_FOLDERS), key)


def read_rows(path: str, columns: dict[str, str], key: str, limit: int | None, max_items: int) -> pa.Table:
    """The first ``limit`` rows (all when None) of ``columns`` ({column: config key that names it})."""
    files = set_files(path, f"{key}.path")
    require_columns(files, columns, key)
    cap = limit or max_items
    parts, rows = [], 0
    for file in files:
        for batch in open_parquet(file, key).iter_batches(columns=list(columns), batch_size=4096):
            parts.append(batch)
            rows += batch.num_rows
            if rows > cap:
                break
        if rows > cap:
            break
    if rows > cap and limit is None:
        raise InputError(f"{key}: {path} has more than max_items={max_items} rows; set {key}.limit to evaluate "
                         "a sample (or raise max_items)")
    table = pa.Table.from_batches(parts, schema=parts[0].schema) if parts else pa.table({c: [] for c in columns})
    return table.slice(0, cap)


def text_items(name: str, config, max_items: int) -> pa.Table:
    """item_id, text: documents for perplexity. A packed prepare split is cut back into its documents."""
    key = f"perplexity.sets.{name}"
    files = set_files(config.path, f"{key}.path")
    if "input_ids" in open_parquet(files[0], key).schema_arrow.names:
        return packed_documents(config, key, max_items)
    table = read_rows(config.path, {config.id_column: f"{key}.id_column", config.text_column: f"{key}.text_column"},
                      key, config.limit, max_items)
    table = table.filter(pc.invert(pc.is_null(table.column(config.text_column))))
    return pa.table({"item_id": table.column(config.id_column).cast(pa.string()),
                     "text": table.column(config.text_column).cast(pa.string())})


def packed_documents(config, key: str, max_items: int) -> pa.Table:
    if not config.tokenizer:
        raise ConfigError(f"{key}: {config.path} is a packed (tokenized) dataset; set {key}.tokenizer to the "
                          "tokenizer it was packed with, to decode its documents")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(local_path(config.tokenizer))  # an output: its current run
    rows = read_rows(config.path, dict.fromkeys(PACKED_CPT_INPUTS.names, f"{key} (packed)"), key, None, max_items)
    ids, texts = [], []
    cap = config.limit or max_items
    for row, (tokens, lengths) in enumerate(zip(rows.column("input_ids").to_pylist(),
                                                rows.column("doc_lengths").to_pylist())):
        start = 0
        for piece, length in enumerate(lengths):
            text = tokenizer.decode(tokens[start:start + length], skip_special_tokens=True).strip()
            start += length
            if text and len(texts) < cap:
                ids.append(f"row{row}-doc{piece}")
                texts.append(text)
    return pa.table({"item_id": ids, "text": texts})


def choice_items(name: str, config, max_items: int) -> pa.Table:
    """item_id, subject, question, choices, answer: MMLU-format questions, checked row by row."""
    key = f"multiple_choice.sets.{name}"
    columns = {config.question_column: f"{key}.question_column", config.choices_column: f"{key}.choices_column",
               config.answer_column: f"{key}.answer_column"}
    for column, what in ((config.subject_column, "subject_column"), (config.id_column, "id_column")):
        if column:
            columns[column] = f"{key}.{what}"
    table = read_rows(config.path, columns, key, config.limit, max_items)
    choices = table.column(config.choices_column).to_pylist()
    answers = table.column(config.answer_column).to_pylist()
    for row, (options, answer) in enumerate(zip(choices, answers)):
        if not options or len(options) < 2 or any(not isinstance(o, str) for o in options):
            raise InputError(f"{key}: {config.path}: row {row}: {config.choices_column} must be a list of at least "
                             f"two strings, got {options!r}")
        if not isinstance(answer, int) or not 0 <= answer < len(options):
            raise InputError(f"{key}: {config.path}: row {row}: {config.answer_column}={answer!r} is not an index "
                             f"into its {len(options)} choices")
    ids = (table.column(config.id_column).cast(pa.string()).to_pylist() if config.id_column
           else [f"{name}-{i}" for i in range(table.num_rows)])
    subjects = table.column(config.subject_column).to_pylist() if config.subject_column else [name] * table.num_rows
    return pa.table({"item_id": ids, "subject": [s or name for s in subjects],
                     "question": table.column(config.question_column).cast(pa.string()),
                     "choices": choices, "answer": answers})


def template_fields(template: str) -> list[str]:
    import string

    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def generation_items(name: str, config, max_items: int) -> pa.Table:
    """item_id, prompt (the set's template over its row), reference."""
    key = f"generation.sets.{name}"
    fields = template_fields(config.prompt)
    columns = {config.id_column: f"{key}.id_column", config.reference_column: f"{key}.reference_column",
               **{field: f"{key}.prompt" for field in fields}}
    table = read_rows(config.path, columns, key, config.limit, max_items)
    rows = table.to_pylist()
    return pa.table({"item_id": [str(r[config.id_column]) for r in rows],
                     "prompt": [config.prompt.format(**{f: r[f] for f in fields}) for r in rows],
                     "reference": [str(r[config.reference_column] or "") for r in rows]})


def judge_items(config, max_items: int) -> pa.Table:
    key = "judge.prompts"
    table = read_rows(config.path, {config.id_column: f"{key}.id_column", config.prompt_column: f"{key}.prompt_column"},
                      key, config.limit, max_items)
    prompts = table.column(config.prompt_column)
    if pa.types.is_list(prompts.type):  # an SFT output's messages: the first user turn is the question
        prompts = pa.array([next((m["content"] for m in messages or [] if m["role"] == "user"), None)
                            for messages in prompts.to_pylist()], pa.string())
    return pa.table({"item_id": table.column(config.id_column).cast(pa.string()),
                     "prompt": prompts.cast(pa.string())}).filter(pc.invert(pc.is_null(prompts)))


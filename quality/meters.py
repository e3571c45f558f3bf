"""Whole-dataset measurements, one idea each. A meter sees every batch of the streamed dataset
(``update``), may ask for a second look at some rows (``second_look``, for exact duplicates), and
then reports its checks. Memory stays bounded: counts, a histogram, a few example ids, and the
bounded hash partitions of ``uniqueness``."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.blank import BLANK_PATTERN
from core.hashing import key_hashes
from core.pii import PREFILTERS, find_pii
from quality.checks import Check
from quality.uniqueness import ConfirmedRepeats, RepeatCounter

RowIds = Callable[[np.ndarray], list[str]]  # row positions in the batch -> ids shown as examples
LENGTH_BINS = np.concatenate([[0], np.logspace(0, 7, 57)])  # chars, log-spaced up to 10M


class Meter:
    columns: tuple[str, ...] = ()

    def __init__(self, examples: int):
        self.max_examples = examples
        self.examples: list[str] = []
        self.count = 0  # offending rows, for the meters that count them

    def start_part(self, part: str) -> None:
        """The scan moves on to another part of the dataset (a split)."""

    def update(self, table: pa.Table, rows: RowIds) -> None:
        raise NotImplementedError

    def needs_second_look(self) -> bool:
        return False

    def second_look(self, table: pa.Table, rows: RowIds) -> None:
        pass

    def checks(self) -> list[Check]:
        raise NotImplementedError

    def keep_examples(self, offending: np.ndarray, rows: RowIds, note: Callable[[int], str] | None = None) -> None:
        room = self.max_examples - len(self.examples)
        if room > 0 and len(offending):
            picked = offending[:room]
            ids = rows(picked)
            self.examples += [f"{i} ({note(p)})" if note else i for i, p in zip(ids, picked)]


# --- what a row holds, as arrays over the batch --------------------------------------------------


def strings(column: str) -> Callable[[pa.Table], pa.Array]:
    return lambda table: table[column].combine_chunks()


def conversation_text(table: pa.Table) -> pa.Array:
    """Every message's role and content joined: what makes two SFT rows the same conversation."""
    messages = table["messages"].combine_chunks()
    flat = pc.list_flatten(messages)
    turns = pc.binary_join_element_wise(pc.struct_field(flat, "role"), pc.struct_field(flat, "content"), ": ")
    offsets = messages.offsets
    rebuilt = pa.ListArray.from_arrays(offsets, pc.fill_null(turns, ""), mask=messages.is_null())
    return pc.binary_join(rebuilt, "\n")


def joined(*columns: str) -> Callable[[pa.Table], pa.Array]:
    """Several text columns as one string per row (what makes two preference rows the same triple)."""
    return lambda table: pc.binary_join_element_wise(*(pc.fill_null(table[c], "") for c in columns), "\x1e")


# --- the meters ---------------------------------------------------------------------------------


def blank(values: pa.Array) -> np.ndarray:
    """Per string: null, empty, or nothing a reader would see (``core.blank``: invisible characters too)."""
    return pc.fill_null(pc.match_substring_regex(values, BLANK_PATTERN), True).to_numpy(zero_copy_only=False)


class NotEmpty(Meter):
    """Null, blank strings (nothing but spaces or invisible characters), and empty lists."""

    def __init__(self, column: str, examples: int):
        super().__init__(examples)
        self.column, self.columns, self.count = column, (column,), 0

    def update(self, table, rows):
        values = table[self.column].combine_chunks()
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            empty = pc.or_kleene(values.is_null(), pc.equal(pc.list_value_length(values), 0))
            bad = np.flatnonzero(pc.fill_null(empty, True).to_numpy(zero_copy_only=False))
        else:
            bad = np.flatnonzero(blank(values))
        self.count += len(bad)
        self.keep_examples(bad, rows)

    def checks(self):
        return [Check(f"not_empty.{self.column}", f"`{self.column}` is never null, blank or empty", self.count, 0, 0,
                      self.examples)]


class MessagesNotBlank(Meter):
    """Messages whose content is null or blank: `not_empty.messages` sees only the list, and a blank assistant
    message teaches the model to answer nothing."""

    columns = ("messages",)

    def update(self, table, rows):
        messages = table["messages"].combine_chunks()
        flat = pc.list_flatten(messages)
        hits = np.flatnonzero(blank(pc.struct_field(flat, "content")))  # blank messages, as flat positions
        parents = pc.list_parent_indices(messages).to_numpy(zero_copy_only=False)
        bad, first = np.unique(parents[hits], return_index=True)  # their rows, and each row's first one
        self.count += len(bad)
        if len(bad) and len(self.examples) < self.max_examples:
            roles = pc.struct_field(flat, "role").to_pylist()
            starts = messages.offsets.to_numpy() - messages.offsets[0].as_py()
            note = {row: f"{roles[hits[f]]} message {hits[f] - starts[row] + 1} is blank" for row, f in zip(bad, first)}
            self.keep_examples(bad, rows, note.get)

    def checks(self):
        return [Check("not_empty.message_content", "no message's content is null or blank (the assistant's "
                      "least of all)", self.count, 0, 0, self.examples)]


class Repeats(Meter):
    """Rows whose key an earlier row already has: ids that must be unique, or texts whose exact repeats
    must stay under a rate. Exact, in bounded memory (``quality.uniqueness``)."""

    def __init__(self, name: str, description: str, columns: tuple[str, ...], key: Callable[[pa.Table], pa.Array],
                 examples: int, max_rate: float | None = None):
        super().__init__(examples)
        self.name, self.description, self.columns, self.key, self.max_rate = name, description, columns, key, max_rate
        self.counter = RepeatCounter()
        self.confirm: ConfirmedRepeats | None = None
        self.hashed_extra = 0

    def _keys(self, table) -> tuple[list[str], np.ndarray]:
        keys = self.key(table)
        valid = np.flatnonzero(keys.is_valid().to_numpy(zero_copy_only=False))
        return keys.take(pa.array(valid)).to_pylist(), valid

    def update(self, table, rows):
        keys, _ = self._keys(table)
        self.counter.add(key_hashes(keys))

    def needs_second_look(self):
        if self.confirm is None:
            repeated, self.hashed_extra = self.counter.repeated_hashes()
            self.confirm = ConfirmedRepeats(repeated)
        return len(self.confirm.wanted) > 0

    def second_look(self, table, rows):
        keys, valid = self._keys(table)
        self.confirm.add(key_hashes(keys), keys, lambda hits: rows(valid[hits]))

    def checks(self):
        extra, groups = self.confirm.result(self.hashed_extra) if self.confirm else (0, [])
        examples = [" = ".join(ids) for ids in groups[: self.max_examples]]
        if self.max_rate is None:
            return [Check(self.name, self.description, extra, 0, 0, examples)]
        rate = extra / self.counter.rows if self.counter.rows else 0.0
        return [Check(self.name, self.description, round(rate, 6), 0, self.max_rate, examples)]


class Lengths(Meter):
    """Characters per row within bounds; keeps a histogram for the length chart."""

    def __init__(self, name: str, columns: tuple[str, ...], lengths: Callable[[pa.Table], np.ndarray],
                 low: float, high: float, examples: int):
        super().__init__(examples)
        self.name, self.columns, self.lengths, self.low, self.high = name, columns, lengths, low, high
        self.outside = 0
        self.histogram = np.zeros(len(LENGTH_BINS) - 1, dtype=np.int64)

    def update(self, table, rows):
        lengths = self.lengths(table)
        self.histogram += np.histogram(np.clip(lengths, 0, LENGTH_BINS[-1]), LENGTH_BINS)[0]
        bad = np.flatnonzero((lengths < self.low) | (lengths > self.high))
        self.outside += len(bad)
        self.keep_examples(bad, rows, lambda i: f"{int(lengths[i])} chars")

    def checks(self):
        return [Check(self.name, f"characters per row in [{self.low:g}, {self.high:g}] (rows outside)",
                      self.outside, 0, 0, self.examples, chart="lengths.png")]


def char_lengths(column: str) -> Callable[[pa.Table], np.ndarray]:
    return lambda table: pc.fill_null(pc.utf8_length(table[column]), 0).to_numpy(zero_copy_only=False)


def conversation_lengths(table: pa.Table) -> np.ndarray:
    messages = table["messages"].combine_chunks()
    contents = pc.struct_field(pc.list_flatten(messages), "content")
    parents = pc.list_parent_indices(messages).to_numpy(zero_copy_only=False)
    chars = pc.fill_null(pc.utf8_length(contents), 0).to_numpy(zero_copy_only=False)
    return np.bincount(parents, weights=chars, minlength=len(messages)).astype(np.int64)


class Pii(Meter):
    """Rows where the factory's own PII rules (core.pii) would still find an email, public IP or phone.
    A cheap RE2 prefilter (pyarrow) picks the rows the exact rules run on."""

    def __init__(self, columns: tuple[str, ...], text: Callable[[pa.Table], pa.Array], kinds: list[str], examples: int):
        super().__init__(examples)
        self.columns, self.text, self.kinds = columns, text, tuple(kinds)
        self.by_kind: Counter = Counter()

    def update(self, table, rows):
        if not self.kinds:
            return
        texts = pc.fill_null(self.text(table), "")
        maybe = np.zeros(len(texts), dtype=bool)
        for kind in self.kinds:
            maybe |= pc.match_substring_regex(texts, PREFILTERS[kind]).to_numpy(zero_copy_only=False)
        candidates = np.flatnonzero(maybe)
        found = [(i, find_pii(texts[int(i)].as_py(), self.kinds)) for i in candidates]
        found = [(i, hit) for i, hit in found if hit is not None]
        self.count += len(found)
        self.by_kind.update(hit[0] for _, hit in found)
        if found:
            hits = dict(found)
            self.keep_examples(np.array([i for i, _ in found]), rows, lambda i: f"{hits[i][0]}: {hits[i][1]!r}")

    def checks(self):
        kinds = ", ".join(self.kinds) or "nothing (no PII rule asked for)"
        return [Check("no_pii", f"no text holds PII the redaction rules would replace ({kinds})", self.count, 0, 0,
                      self.examples)]


class ValuesIn(Meter):
    def __init__(self, column: str, allowed: list[str], examples: int):
        super().__init__(examples)
        self.column, self.columns, self.allowed, self.count = column, (column,), list(allowed), 0

    def update(self, table, rows):
        inside = pc.is_in(table[self.column], value_set=pa.array(self.allowed, pa.string()))
        bad = np.flatnonzero(~pc.fill_null(inside, False).to_numpy(zero_copy_only=False))
        self.count += len(bad)
        values = table[self.column].to_pylist()
        self.keep_examples(bad, rows, lambda i: repr(values[i]))

    def checks(self):
        return [Check(f"values_in.{self.column}", f"`{self.column}` is one of {self.allowed}", self.count, 0, 0,
                      self.examples)]


class Shares(Meter):
    """The share of rows of each value of a column, each within bounds; the counts feed a chart."""

    def __init__(self, column: str, low: float, high: float, examples: int, chart: str):
        super().__init__(examples)
        self.column, self.columns, self.low, self.high, self.chart = column, (column,), low, high, chart
        self.counts: Counter = Counter()

    def update(self, table, rows):
        counted = pc.value_counts(table[self.column].combine_chunks())
        self.counts.update(dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())))

    def checks(self):
        total = sum(self.counts.values())
        return [Check(f"share.{self.column}.{value}", f"share of rows with {self.column} = {value!r}",
                      round(n / total, 6), self.low, self.high, chart=self.chart)
                for value, n in sorted(self.counts.items(), key=lambda item: str(item[0]))]


class ChosenDiffers(Meter):
    columns = ("chosen", "rejected")

    def update(self, table, rows):
        same = pc.fill_null(pc.equal(table["chosen"], table["rejected"]), False).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(same)
        self.count += len(bad)
        self.keep_examples(bad, rows)

    def checks(self):
        return [Check("chosen_differs", "`chosen` and `rejected` are never the same text", self.count, 0, 0,
                      self.examples)]


class RolesAlternate(Meter):
    """Messages go (system?), user, assistant, user, assistant, ... and end with the assistant."""

    columns = ("messages",)

    def update(self, table, rows):
        messages = table["messages"].combine_chunks()
        bad = np.flatnonzero(~roles_alternate(messages))
        self.count += len(bad)
        self.keep_examples(bad, rows, lambda i: "/".join(m["role"] for m in messages[int(i)].as_py() or []) or "none")

    def checks(self):
        return [Check("roles_alternate", "messages go (system), user, assistant, ... and end with the assistant",
                      self.count, 0, 0, self.examples)]


def roles_alternate(messages: pa.ListArray) -> np.ndarray:
    """Per row, vectorised: an optional system message first, then user/assistant turns in pairs."""
    n = len(messages)
    roles = pc.fill_null(pc.struct_field(pc.list_flatten(messages), "role"), "").to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(messages).to_numpy(zero_copy_only=False)
    starts = messages.offsets.to_numpy()[:-1] - messages.offsets[0].as_py()
    position = np.arange(len(roles)) - starts[parent]
    opens_with_system = np.zeros(n, dtype=bool)
    opens_with_system[parent[(position == 0) & (roles == "system")]] = True
    turn = position - opens_with_system[parent]  # position among user/assistant turns
    fits = ((roles == "system") & (position == 0)) | ((roles == "user") & (turn % 2 == 0)) | \
        ((roles == "assistant") & (turn % 2 == 1))
    misfits = np.bincount(parent, weights=~fits, minlength=n)
    turns = pc.fill_null(pc.list_value_length(messages), 0).to_numpy(zero_copy_only=False) - opens_with_system
    return (misfits == 0) & (turns > 0) & (turns % 2 == 0) & messages.is_valid().to_numpy(zero_copy_only=False)


class PackedRows(Meter):
    """Packed CPT rows: ``n_tokens`` is the row's length, ``doc_lengths`` sum to it, every row is exactly
    ``seq_len`` tokens except a split's last, and none is longer (the model's context)."""

    columns = ("input_ids", "doc_lengths", "n_tokens")

    def __init__(self, seq_len: int | None, examples: int):
        super().__init__(examples)
        self.seq_len = seq_len
        self.counts: Counter = Counter()
        self.found: dict[str, list[str]] = {}
        self.part = "all"
        self.last: dict[str, tuple[str, bool]] = {}  # part -> (id of its last row so far, is it short)

    def start_part(self, part: str) -> None:
        self.part = part

    def update(self, table, rows):
        n_tokens = pc.fill_null(table["n_tokens"], -1).to_numpy(zero_copy_only=False).astype(np.int64)
        length = pc.fill_null(pc.list_value_length(table["input_ids"]), -1).to_numpy(zero_copy_only=False)
        pieces = table["doc_lengths"].combine_chunks()
        piece_sums = np.bincount(pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False),
                                 weights=pc.fill_null(pc.list_flatten(pieces), 0).to_numpy(zero_copy_only=False),
                                 minlength=len(pieces)).astype(np.int64)
        self._found("n_tokens_matches", np.flatnonzero(n_tokens != length), rows)
        self._found("doc_lengths_sum", np.flatnonzero(piece_sums != length), rows)
        if self.seq_len is not None and table.num_rows:
            self._found("within_context", np.flatnonzero(length > self.seq_len), rows)
            # one example more than shown: the part's last row may be among them and is allowed
            self._found("short", np.flatnonzero(length < self.seq_len), rows, spare=1)
            self.last[self.part] = (rows(np.array([table.num_rows - 1]))[0], bool(length[-1] < self.seq_len))

    def _found(self, name: str, bad: np.ndarray, rows: RowIds, spare: int = 0) -> None:
        self.counts[name] += len(bad)
        kept = self.found.setdefault(name, [])
        room = self.max_examples + spare - len(kept)
        if room > 0 and len(bad):
            kept += rows(bad[:room])

    def checks(self):
        found = [
            Check("n_tokens_matches", "`n_tokens` equals the length of `input_ids`", self.counts["n_tokens_matches"],
                  0, 0, self.found.get("n_tokens_matches", [])),
            Check("doc_lengths_sum", "`doc_lengths` sum to the row's tokens", self.counts["doc_lengths_sum"], 0, 0,
                  self.found.get("doc_lengths_sum", [])),
        ]
        if self.seq_len is None:
            return found
        allowed = {row_id for row_id, short in self.last.values() if short}  # each split's last row
        short = [row_id for row_id in self.found.get("short", []) if row_id not in allowed]
        return found + [
            Check("within_context", f"no row is longer than seq_len {self.seq_len} (the model's context)",
                  self.counts["within_context"], 0, 0, self.found.get("within_context", [])),
            Check("rows_full", f"every row holds exactly {self.seq_len} tokens except a split's last",
                  self.counts["short"] - len(allowed), 0, 0, short[: self.max_examples]),
        ]


class DomainTokenShare(Meter):
    """The share of tokens from domain documents (prepare's document table), near the mixing target."""

    columns = ("domain", "n_tokens")

    def __init__(self, target: float | None, tolerance: float, examples: int):
        super().__init__(examples)
        self.target, self.tolerance = target, tolerance
        self.tokens: Counter = Counter()

    def update(self, table, rows):
        sums = table.group_by("domain").aggregate([("n_tokens", "sum")])
        self.tokens.update(dict(zip(sums["domain"].to_pylist(), sums["n_tokens_sum"].to_pylist())))

    def checks(self):
        total = sum(self.tokens.values())
        share = round(self.tokens.get("domain", 0) / total, 6) if total else None
        if self.target is None:
            return [Check("domain_token_share", "share of domain tokens (no mixing target set: not judged)", None,
                          chart="domain_share.png")]
        return [Check("domain_token_share", f"share of domain tokens within {self.tolerance:g} of the mixing "
                      f"target {self.target:g}", share, self.target - self.tolerance, self.target + self.tolerance,
                      chart="domain_share.png")]

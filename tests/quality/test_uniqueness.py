"""Exact repeats in bounded memory: spilling hashes to partitions finds the same repeats as holding
them, and a 64-bit hash collision between different keys is never counted as a repeat."""
from __future__ import annotations

import numpy as np

from core.hashing import key_hashes
from quality.uniqueness import ConfirmedRepeats, RepeatCounter


def keys_with_repeats(n: int) -> list[str]:
    keys = [f"key-{i}" for i in range(n)]
    for i in range(0, n, 97):  # every 97th key repeats the one before it
        keys[i] = keys[i - 1] if i else keys[i]
    return keys


def count(keys: list[str], rows_in_memory: int, hashes=None) -> tuple[int, list[list[str]]]:
    hashes = key_hashes(keys) if hashes is None else hashes
    counter = RepeatCounter(rows_in_memory=rows_in_memory)
    for start in range(0, len(keys), 250):  # batches, as the scan feeds them
        counter.add(hashes[start:start + 250])
    repeated, hashed_extra = counter.repeated_hashes()
    confirm = ConfirmedRepeats(repeated)
    for start in range(0, len(keys), 250):
        confirm.add(hashes[start:start + 250], keys[start:start + 250],
                    lambda hits, start=start: [f"row{start + int(i)}" for i in hits])
    return confirm.result(hashed_extra)


def test_spilled_partitions_find_the_same_repeats_as_memory():
    keys = keys_with_repeats(5000)
    expected = len(keys) - len(set(keys))
    in_memory, groups = count(keys, rows_in_memory=10**9)
    spilled, spilled_groups = count(keys, rows_in_memory=300)  # spills to partition files many times
    assert in_memory == spilled == expected == 51
    assert sorted(map(sorted, groups)) == sorted(map(sorted, spilled_groups))
    assert ["row96", "row97"] in groups


def test_a_hash_collision_is_not_a_repeat():
    keys = ["alpha", "beta", "gamma", "alpha"]
    collided = key_hashes(keys)
    collided[1] = collided[2]  # pretend beta and gamma share a 64-bit hash
    extra, groups = count(keys, rows_in_memory=10**9, hashes=collided)
    assert extra == 1 and groups == [["row0", "row3"]]
    assert np.unique(collided).size == 2  # the hashes alone would have counted two repeats

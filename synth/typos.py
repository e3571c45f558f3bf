"""Typo augmentation, done locally: swapped, dropped and doubled letters at a given rate."""
from __future__ import annotations

import random


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with about ``rate`` of its letters disturbed; at least one if it has any letters."""
    chars = list(text)
    letters = [i for i, c in enumerate(chars) if c.isalpha()]
    if not letters:
        return text
    chosen = {i for i in letters if rng.random() < rate} or {rng.choice(letters)}
    out: list[str] = []
    skip_next = False
    for i, char in enumerate(chars):
        if skip_next:
            skip_next = False
            continue
        if i not in chosen:
            out.append(char)
            continue
        kind = rng.choice(("swap", "drop", "double"))
        if kind == "swap" and i + 1 < len(chars) and chars[i + 1].isalpha() and chars[i + 1] != char:
            out += [chars[i + 1], char]
            skip_next = True
        elif kind == "drop" or kind == "swap":
            continue
        else:
            out += [char, char]
    return "".join(out)

"""Slow, obviously-correct references for dataset.py, written straight from method §7 (loops, floats)."""

from __future__ import annotations

import math
from collections.abc import Callable


def ref_train_indices(L: int, S: int, randint: Callable[[int, int], int]) -> list[int]:
    """method §7.3 training: b_i = i·L/S; floor(b_i) if floor(b_i) == floor(b_{i+1}) else randint(floor(b_i),
    floor(b_{i+1})) with the upper bound exclusive."""
    b = [i * L / S for i in range(S + 1)]
    out = []
    for i in range(S):
        lo, hi = math.floor(b[i]), math.floor(b[i + 1])
        out.append(lo if lo == hi else randint(lo, hi))
    return out


def ref_segment_bounds(L: int, S: int) -> list[tuple[int, int]]:
    """[floor(b_i), floor(b_{i+1})) per segment, as floats → floor (the published code's arithmetic)."""
    return [(math.floor(i * L / S), math.floor((i + 1) * L / S)) for i in range(S)]


def ref_test_indices(L: int, S: int) -> list[int]:
    """method §7.3 test: all L snippets in order when L <= S, else floor(i·L/S) for i = 0..S-1."""
    if L <= S:
        return list(range(L))
    return [math.floor(i * L / S) for i in range(S)]


def ref_labels(annotations: dict, videos: list[str], classes: list[str]) -> list[list[float]]:
    """Multi-hot [V][C]: 1 where any annotation of the video has that class."""
    rows = []
    for v in videos:
        row = [0.0] * len(classes)
        for a in annotations[v]["annotations"]:
            for c, name in enumerate(classes):
                if name == a["label"]:
                    row[c] = 1.0
        rows.append(row)
    return rows

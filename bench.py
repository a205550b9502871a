"""Benchmarks (not tests): `python bench.py [SECTION ...] [--device cpu|cuda]`.

Each section times the project's fast path against a slow, obviously-correct reference in the same run
and prints the ratio. Sections register themselves in SECTIONS below; run with no section to run all.
Record the printed tables (with the machine) in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {}


def section(name: str):
    """Decorator: register a benchmark section under `name`."""

    def register(fn: Callable[[argparse.Namespace], None]):
        SECTIONS[name] = fn
        return fn

    return register


def timeit(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall time of `fn()` in seconds (synchronising CUDA around each call)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


# --- sections (each helper adds its own below this line; keep one function per section) ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"which to run (default: all): {', '.join(SECTIONS)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    for name in args.sections or list(SECTIONS):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        print(f"\n=== {name} ({args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads) ===")
        SECTIONS[name](args)


if __name__ == "__main__":
    main()

"""Seed variance (`--seeds 42,43,44`): the same run once per seed, one after another, then one table of the spread
over seeds — per tIoU and AVG, mean ± standard deviation and min–max — for the authors' protocol (each run's
checkpoint selected on test) and, with --val_fraction, the held-out protocol (selected on held-out training videos,
scored once on test) side by side.

Seed s runs in `<save_path>/seed<s>/` with its own CSV, checkpoint and resume file. With --resume every seed that has
a resume file continues (a finished one is re-read, its final test pass re-run) and the others start. The per-seed
results go to `<save_path>/<data_name>_seeds.csv` (fractions, like every CSV of a run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dataset
import train
from train import RunSummary, Scores
from utils import atomic_csv_write, format_table

PROTOCOLS = {  # RunSummary field → table label
    "best_on_test": "authors' (best on test)",
    "held_out": "held-out (selected on val)",
}


def seed_config(cfg: Any, seed: int) -> Any:
    """The config of one seed's run: its own save folder; resumed only if that folder holds a resume file."""
    save = Path(cfg.save_path) / f"seed{seed}"
    resume = bool(cfg.resume) and (save / f"{cfg.data_name}_last.pt").is_file()
    return dataclasses.replace(cfg, seed=seed, seeds=None, save_path=str(save), resume=resume)


def spread(values: np.ndarray) -> tuple[list[str], list[str]]:
    """values [n_seeds, k] (percent) → (`mean ± std` cells, `min–max` cells), one decimal. std is the sample standard
    deviation (ddof 1); with one seed there is none ('–')."""
    mean = values.mean(axis=0)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else [None] * values.shape[1]
    mean_std = [f"{m:.1f} ± " + ("–" if s is None else f"{s:.1f}") for m, s in zip(mean, std, strict=True)]
    min_max = [f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(values.min(axis=0), values.max(axis=0), strict=True)]
    return mean_std, min_max


def variance_table(per_protocol: dict[str, Sequence[Scores]], tious: Sequence[float], title: str) -> str:
    """One table: for each protocol, a `mean ± std` row and a `min–max` row over the seeds' mAP (%) per tIoU, AVG."""
    header = ["protocol", "over seeds", *(f"@{t:g}" for t in tious), "AVG"]
    rows = []
    for label, scores in per_protocol.items():
        mean_std, min_max = spread(100 * np.array([[*s.maps, s.avg] for s in scores]))
        rows += [[label, "mean ± std", *mean_std], ["", "min–max", *min_max]]
    return format_table(header, rows, title=title, align="ll" + "r" * (len(tious) + 1))


def seed_table(summaries: dict[int, RunSummary], protocols: Sequence[str]) -> str:
    """Per seed: mAP@AVG (%) and the step of the evaluation each protocol kept."""
    cell = lambda s: f"{100 * s.avg:.1f} (step {s.step})" if s else "no checkpoint"  # noqa: E731
    rows = [[str(seed), *(cell(getattr(r, p)) for p in protocols)] for seed, r in summaries.items()]
    return format_table(["seed", *(f"{PROTOCOLS[p]}: AVG" for p in protocols)], rows, align="l" + "r" * len(protocols))


def run_seeds(cfg: Any, device: torch.device) -> dict[int, RunSummary]:
    """Train one run per seed of `cfg.seeds` (in order); when all finished, print and save the spread over seeds."""
    summaries: dict[int, RunSummary] = {}
    for i, seed in enumerate(cfg.seeds):
        sub = seed_config(cfg, seed)
        print(f"\n=== seed {seed} ({i + 1} of {len(cfg.seeds)}) → {sub.save_path}{' (resumed)' if sub.resume else ''}")
        summaries[seed] = train.train(sub, device)
    unfinished = [s for s, r in summaries.items() if r.steps < cfg.num_iter]
    if unfinished:
        print(f"\nseeds {unfinished} stopped before step {cfg.num_iter}: the table needs every run finished (--resume)")
        return summaries
    protocols = ["best_on_test"] + (["held_out"] if cfg.val_fraction > 0 else [])
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    rows = [
        [seed, p, s.step, s.accuracy, *s.maps, s.avg]
        for seed, r in summaries.items()
        for p in protocols
        if (s := getattr(r, p)) is not None
    ]
    out = Path(cfg.save_path) / f"{cfg.data_name}_seeds.csv"
    header = ["seed", "protocol", "step", "test_acc", *(f"mAP@{t:.2f}" for t in tious), "mAP@AVG"]
    atomic_csv_write(out, header, rows)
    kept = {seed: r for seed, r in summaries.items() if all(getattr(r, p) is not None for p in protocols)}
    print(seed_table(summaries, protocols))
    if len(kept) < len(summaries):
        print(f"seeds {sorted(set(summaries) - set(kept))}: no evaluation above 0.0 mAP@AVG, no checkpoint: left out")
    if kept:
        demo = " — SYNTHETIC demo data" if cfg.demo else ""
        title = f"\n{cfg.data_name} test mAP (%) over {len(kept)} seeds ({', '.join(map(str, kept))}; std: n-1){demo}"
        print(variance_table({PROTOCOLS[p]: [getattr(r, p) for r in kept.values()] for p in protocols}, tious, title))
    print(f"per-seed rows → {out}")
    return summaries

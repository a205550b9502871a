"""Synthetic THUMOS14-layout dataset for the demo and the end-to-end tests (method §7.1 layout, fake features).

The timelines are real: durations and action segments of 120 THUMOS14 videos (80 "val" = training, 40 "test"),
picked round-robin over the 20 classes (the shortest videos of each class first), each cropped to at most
`MAX_WINDOW_S` seconds around its actions and compressed in time by `time_scale` so the snippet count L stays small.
They ship in `result/demo_timelines.json` (built once by `python demo.py --build-timelines tests/data/thumos14`).

The features are synthetic I3D look-alikes (non-negative, 1024-d per modality): a per-video scene (shared
background pattern plus a weak "context" pattern of the video's classes, as real THUMOS backgrounds are
class-correlated) + a class-specific sparse pattern inside each action segment, weighted by how much of the
snippet the segment covers, + per-snippet noise. Everything is drawn from `numpy.random.default_rng` seeded by
`seed` and the video name, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dataset import DATASETS, FEATURE_DIM, read_ambiguous
from utils import atomic_json_dump, atomic_np_save, atomic_path, remove_stale_temps, safe_file_name

TIMELINES = Path(__file__).resolve().parent / "result" / "demo_timelines.json"
FPS, RATE, DIM = 25.0, 16, FEATURE_DIM  # feature frame rate, frames per snippet, channels per modality (method §1)
DROPPED = DATASETS["thumos14"].dropped_test  # method §7.2: not evaluated anyway
MIN_WINDOW_S = 20.0  # shortest timeline kept: L ≥ 11 snippets even at time_scale 2 (method §7.2 skips L ≤ 10)
MAX_WINDOW_S = 150.0  # longest stretch of a real timeline kept (seconds, before time compression)
PER_CLASS = {"val": 4, "test": 2}  # videos per class and subset in the shipped timelines


def build_timelines(thumos_dir: str | Path, out: str | Path = TIMELINES) -> dict:
    """Pick, crop and store the real timelines the demo uses (run once by a developer; output is committed).

    thumos_dir: the real `thumos14/` folder with `annotations.json` and `official/annotations_*/Ambiguous_*.txt`.
    Output: {video: {"subset", "duration", "annotations": [{"label", "segment"}], "ambiguous": [[s, e]]}} in
    real seconds, cropped to a window of at most MAX_WINDOW_S that starts shortly before the first action.
    """
    thumos_dir = Path(thumos_dir)
    db = json.loads((thumos_dir / "annotations.json").read_text())
    ambiguous: dict[str, list[tuple[float, float]]] = {}
    for sub in ("val", "test"):
        official = thumos_dir / "official" / f"annotations_{sub}" / f"Ambiguous_{sub}.txt"
        for vid, segs in read_ambiguous(official).items():
            ambiguous.setdefault(vid, []).extend(segs)
    classes = sorted({a["label"] for v in db.values() for a in v["annotations"]})
    out_db: dict[str, dict] = {}
    for sub, k in PER_CLASS.items():
        # Round-robin over classes so that any prefix of the list covers as many classes as possible.
        ranked = {
            c: sorted(
                (v["duration"], name)
                for name, v in db.items()
                if v["subset"] == sub
                and name not in DROPPED
                and v["duration"] >= MIN_WINDOW_S
                and any(a["label"] == c for a in v["annotations"])
            )
            for c in classes
        }
        for _ in range(k):
            for c in classes:
                fresh = [name for _, name in ranked[c] if name not in out_db]
                if not fresh:
                    continue
                name = fresh[0]
                v = db[name]
                start = max(0.0, min(a["segment"][0] for a in v["annotations"]) - 5.0)
                start = max(0.0, min(start, v["duration"] - MIN_WINDOW_S))
                end = min(v["duration"], start + MAX_WINDOW_S)

                def crop(segs: Sequence[Sequence[float]], start: float = start, end: float = end) -> list[list[float]]:
                    kept = [[max(s, start) - start, min(e, end) - start] for s, e in segs if e > start and s < end]
                    return [[round(s, 2), round(e, 2)] for s, e in kept if e - s > 0.05]

                anns = [{"label": a["label"], "segment": seg} for a in v["annotations"] for seg in crop([a["segment"]])]
                out_db[name] = {
                    "subset": sub,
                    "duration": round(end - start, 3),
                    "annotations": anns,
                    "ambiguous": crop(ambiguous.get(name, [])),
                }
    lines = [f"{json.dumps(name)}: {json.dumps(v)}" for name, v in out_db.items()]  # one video a line, in order
    Path(out).write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return out_db


def _snippet_coverage(segments: list[list[float]], num_snippets: int, time_scale: float) -> np.ndarray:
    """Fraction of each snippet [t·16/25, (t+1)·16/25) s covered by the (scaled) segments → [L] in [0, 1]."""
    left = np.arange(num_snippets) * RATE / FPS
    right = left + RATE / FPS
    cover = np.zeros(num_snippets)
    for s, e in segments:
        s, e = s / time_scale, e / time_scale
        cover += np.clip(np.minimum(right, e) - np.maximum(left, s), 0.0, None) / (RATE / FPS)
    return np.minimum(cover, 1.0)


def make_demo(
    root: str | Path,
    seed: int = 0,
    *,
    time_scale: float = 2.0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Path:
    """Write the synthetic dataset in the THUMOS14 layout under `<root>/thumos14` → `root` (the --data_path).

    Files: `features/{val,test}/<video>_{rgb,flow}.npy` float32 [L, 1024] and `annotations.json` (the shared
    format: {video: {"subset", "duration", "fps", "annotations"}}), plus `Ambiguous_test.txt` / `Ambiguous_val.txt`
    (official THUMOS14 text format) with the videos' Ambiguous segments. time_scale > 1 compresses time (smaller
    L); max_train / max_test keep only the first videos of each subset (tiny sets for tests). Deterministic in
    `seed`; the annotation file is written last, so a folder with it is complete.
    """
    root = Path(root)
    base = root / "thumos14"
    timelines = json.loads(TIMELINES.read_text())
    limit = {"val": max_train, "test": max_test}
    chosen: dict[str, list[str]] = {"val": [], "test": []}
    for name, v in timelines.items():  # insertion order = the round-robin order of build_timelines
        lst = chosen[v["subset"]]
        if limit[v["subset"]] is None or len(lst) < limit[v["subset"]]:
            lst.append(name)
    classes = sorted({a["label"] for v in timelines.values() for a in v["annotations"]})
    rng = np.random.default_rng(seed)
    # Per modality: a dense background pattern and one sparse pattern per class (48 of 1024 channels).
    background = {m: rng.gamma(2.0, 0.1, DIM) for m in ("rgb", "flow")}
    pattern = {}
    for m in ("rgb", "flow"):
        p = np.zeros((len(classes), DIM))
        for c in range(len(classes)):
            p[c, rng.choice(DIM, 48, replace=False)] = rng.uniform(0.8, 1.6, 48)
        pattern[m] = p
    context = {"rgb": 0.25, "flow": 0.08}  # scene context of the class: stronger in appearance than in motion
    annotations: dict[str, dict] = {}
    ambiguous_lines: dict[str, list[str]] = {"val": [], "test": []}
    for sub, names in chosen.items():
        out_dir = base / "features" / sub
        for name in names:
            v = timelines[name]
            duration = v["duration"] / time_scale
            num_snippets = int(duration * FPS) // RATE
            vrng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            labels = sorted({a["label"] for a in v["annotations"]})
            cover = {
                c: _snippet_coverage(
                    [a["segment"] for a in v["annotations"] if a["label"] == c], num_snippets, time_scale
                )
                for c in labels
            }
            for m in ("rgb", "flow"):
                scene = background[m] * vrng.uniform(0.6, 1.4, DIM)
                scene = scene + context[m] * sum(pattern[m][classes.index(c)] for c in labels)
                feats = np.repeat(scene[None], num_snippets, axis=0)
                for c in labels:
                    strength = vrng.uniform(0.7, 1.3)
                    feats += strength * cover[c][:, None] * pattern[m][classes.index(c)][None]
                feats += vrng.normal(0.0, 0.15, feats.shape)
                atomic_np_save(
                    np.maximum(feats, 0.0).astype(np.float32), out_dir / f"{safe_file_name(name, TIMELINES)}_{m}.npy"
                )
            annotations[name] = {
                "subset": sub,
                "duration": round(duration, 3),
                "fps": FPS,
                "annotations": [
                    {"label": a["label"], "segment": [round(s / time_scale, 3), round(e / time_scale, 3)]}
                    for a in v["annotations"]
                    for s, e in [a["segment"]]
                ],
            }
            for s, e in v["ambiguous"]:
                ambiguous_lines[sub].append(f"{name} {s / time_scale:.3f} {e / time_scale:.3f}")
    for sub, lines in ambiguous_lines.items():
        with atomic_path(base / f"Ambiguous_{sub}.txt") as tmp:
            tmp.write_text("".join(line + "\n" for line in lines))
    atomic_json_dump(annotations, base / "annotations.json", indent=1)
    return root


def ensure_demo(root: str | Path) -> Path:
    """`make_demo(root)` unless `<root>/thumos14` is already complete (its annotation file is written last)."""
    root = Path(root)
    base = root / "thumos14"
    if not (base / "annotations.json").is_file():
        for folder in (base, base / "features" / "val", base / "features" / "test"):  # an interrupted first demo's
            remove_stale_temps(folder)
        print(f"writing the synthetic demo dataset → {base}")
        make_demo(root, seed=0)
    return root


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-timelines", metavar="THUMOS_DIR", help="rebuild result/demo_timelines.json from real data")
    ap.add_argument("--out", default="demo_data", help="where to write the synthetic dataset (default: demo_data)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.build_timelines:
        print(f"{len(build_timelines(a.build_timelines))} timelines → {TIMELINES}")
    else:
        print(f"synthetic THUMOS14-layout dataset → {make_demo(a.out, a.seed) / 'thumos14'}")

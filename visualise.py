"""Pictures of localization results (matplotlib Agg, PNG), in the spirit of the paper's result figure.

- `plot_video`: one video — keyframes (when the file is at hand), ground truth and detections as coloured bars per
  class on a time axis in seconds, and the class activation curves (seg_score per shown class) below.
- `plot_ap_per_class`, `plot_map_vs_tiou`: a test run's per-class AP bars and its mAP-vs-tIoU curve.
- `save_test_visuals`: all of the above for a test run (`main.py --save_vis`).

Conventions shared with the rest of the project:
- detections: `[(class_index, start_s, end_s, score)]`, as `postprocess.detect` returns them;
- ground truth: `[{"label": name, "segment": [start_s, end_s]}]` per video, as `dataset.load_split(...).ground_truth`;
- a class always gets the same colour (`class_colour`), in every figure, whatever else is shown;
- only classes that are detected or in the ground truth are drawn (at most `max_classes`), so 200-class
  checkpoints stay legible.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import hsv_to_rgb, to_rgb  # noqa: E402

from postprocess import DISPLAY_MERGE_TIOU, DISPLAY_MIN_SCORE, display_detections  # noqa: E402
from utils import Progress, atomic_path, safe_file_name  # noqa: E402

DPI = 100
VIDEO_FIGSIZE = (12.0, 8.0)  # inches → 1200×800 px at DPI
GOLDEN = 0.618033988749895
MAX_LANES = 3  # overlapping detection bars of one class are stacked in up to this many lanes


# Kelly's colours of maximum contrast (without white and black): THUMOS14's 20 classes all look different.
KELLY = (
    "#F3C300", "#875692", "#F38400", "#A1CAF1", "#BE0032", "#C2B280", "#848482", "#008856", "#E68FAC", "#0067A5",
    "#F99379", "#604E97", "#F6A600", "#B3446C", "#DCD300", "#882D17", "#8DB600", "#654522", "#E25822", "#2B3D26",
)  # fmt: skip


def class_colour(class_index: int) -> tuple[float, float, float]:
    """RGB in [0, 1] for a class, fixed by its index alone (the same in every figure and run).

    Classes 0–19: Kelly's contrast colours. Beyond (ActivityNet): hues on the golden-ratio sequence, so nearby
    indices get far-apart hues, with three saturation/brightness levels to separate hues that come close.
    """
    if class_index < len(KELLY):
        return tuple(float(v) for v in to_rgb(KELLY[class_index]))
    hue = (class_index * GOLDEN) % 1.0
    level = class_index % 3
    return tuple(float(v) for v in hsv_to_rgb((hue, (0.9, 0.55, 0.75)[level], (0.8, 0.6, 0.95)[level])))


def snippet_edges(num_scores: int, num_snippets: int, fps: float, rate: int) -> np.ndarray:
    """Times in seconds [T'+1] of the spans covered by the T' sampled scores of a video of L snippets.

    Post-processing (method §9.3) maps frame j to score position j·T'/F with F = rate·L frames, so score i covers frames
    [i·F/T', (i+1)·F/T') — the same span whether the video was subsampled (L > num_seg) or not.
    """
    frames = rate * num_snippets
    return np.arange(num_scores + 1, dtype=np.float64) * (frames / max(num_scores, 1)) / fps


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Write `fig` atomically as PNG at its own size (no tight bbox: the pixel size is predictable) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    return path


def _label_index(classes: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(classes)}


def _shown_classes(
    detections: Sequence[tuple[int, float, float, float]],
    gt: Sequence[tuple[int, float, float]],
    act_score: np.ndarray,
    max_classes: int,
) -> tuple[list[int], int]:
    """Classes to draw: ground-truth classes first, then detected ones, each by act_score descending; capped.

    Returns (class indices top to bottom, number of classes left out). With neither detections nor ground truth the
    top-scoring class is shown, so the curve panel is never empty.
    """
    order = lambda cs: sorted(cs, key=lambda c: (-float(act_score[c]), c))  # noqa: E731
    gt_cls = order({c for c, _, _ in gt})
    det_cls = order({int(d[0]) for d in detections} - set(gt_cls))
    shown = gt_cls + det_cls
    if not shown:
        shown = [int(np.argmax(act_score))]
    return shown[:max_classes], max(0, len(shown) - max_classes)


def keyframes(video_path: str | os.PathLike, count: int = 8, fps: float = 25.0) -> list[tuple[float, np.ndarray]]:
    """About `count` frames spread evenly over the video → [(time_s, uint8 RGB [h, w, 3])], decoded small."""
    import video  # decoding stack (PyAV) only when a picture with keyframes is asked for

    total = max(video.probe_video(video_path, fps).num_frames_25, 1)
    wanted = set(np.linspace(0, total - 1, num=min(count, total)).round().astype(int).tolist())
    frames = []
    for i, frame in enumerate(video.iter_frames(video_path, fps=fps, short_side=96)):
        if i in wanted:
            frames.append((i / fps, frame))
        if i >= max(wanted):
            break
    return frames


def plot_video(
    path: str | os.PathLike,
    *,
    classes: Sequence[str],
    seg_score: np.ndarray,
    act_score: np.ndarray,
    num_snippets: int,
    detections: Sequence[tuple[int, float, float, float]],
    fps: float = 25.0,
    rate: int = 16,
    ground_truth: Sequence[Mapping[str, Any]] | None = None,
    video_path: str | os.PathLike | None = None,
    frames: list[tuple[float, np.ndarray]] | None = None,
    title: str | None = None,
    max_classes: int = 10,
    max_bars_per_class: int = 10,
    show_all: bool = False,
) -> Path:
    """Draw one video's result and write it to `path` (PNG, 1200×800 px) → `path`.

    seg_score [T', C] (the curves; pass softmax(cas) to see the plain class activations instead), act_score [C],
    num_snippets L (the video's snippet count before test sampling: fixes the time axis), detections
    [(class_index, start_s, end_s, score)] (all of them), ground_truth [{"label", "segment"}] (labels not in
    `classes` are ignored) or None when unknown. Keyframes come from `frames` [(time_s, RGB)] or are decoded from
    `video_path`; neither → no keyframe strip. Drawn: the detections a person reads
    (`postprocess.display_detections`: a confidence floor, same-class overlaps once), or with `show_all` the
    `max_bars_per_class` best of each class; opacity by score, overlapping bars in lanes. A caption under the
    picture says what is drawn and what the curves' legend means.
    """
    seg_score = np.asarray(seg_score, dtype=np.float64).reshape(-1, len(classes))
    act_score = np.asarray(act_score, dtype=np.float64).reshape(len(classes))
    index = _label_index(classes)
    gt = [
        (index[g["label"]], float(g["segment"][0]), float(g["segment"][1]))
        for g in (ground_truth or [])
        if g["label"] in index
    ]
    drawn, rule = _drawn_detections(detections, show_all, max_bars_per_class)
    shown, hidden = _shown_classes(drawn, gt, act_score, max_classes)
    edges = snippet_edges(len(seg_score), num_snippets, fps, rate)
    end = max([edges[-1]] + [e for _, _, e in gt] + [float(d[2]) for d in drawn])
    if frames is None and video_path is not None:
        frames = keyframes(video_path, fps=fps)

    fig = plt.figure(figsize=VIDEO_FIGSIZE, dpi=DPI)
    ratios = ([1.3] if frames else []) + [1.6, 1.6]
    grid = fig.add_gridspec(
        len(ratios), 1, height_ratios=ratios, hspace=0.35, left=0.2, right=0.97, top=0.92, bottom=0.12
    )
    axes = [fig.add_subplot(g) for g in grid]
    if frames:
        _draw_keyframes(axes.pop(0), frames)
    ax_bar, ax_curve = axes
    ax_curve.sharex(ax_bar)

    # Bars: one row per class; ground truth in the lower half (solid, outlined), detections in the upper half.
    rows = {c: len(shown) - 1 - k for k, c in enumerate(shown)}  # first shown class at the top
    for c, s, e in gt:
        if c in rows:
            ax_bar.barh(rows[c] - 0.22, e - s, left=s, height=0.36, color=class_colour(c), edgecolor="black", lw=1)
    dets = np.array([d for d in drawn if int(d[0]) in rows], dtype=np.float64).reshape(-1, 4)
    top = max(float(dets[:, 3].max()), 1e-12) if len(dets) else 1.0
    for c in shown:
        mine = dets[dets[:, 0] == c]
        mine = mine[np.argsort(-mine[:, 3], kind="stable")]
        lanes = bar_lanes(mine[:, 1:3])
        height = 0.36 / (max(lanes, default=0) + 1)
        for (_, s, e, score), lane in zip(mine, lanes, strict=True):
            alpha = float(np.clip(0.15 + 0.85 * score / top, 0.15, 1.0))
            y = rows[c] + 0.04 + (lane + 0.5) * height
            ax_bar.barh(y, e - s, left=s, height=height * 0.9, color=class_colour(c), alpha=alpha, lw=0)
    ax_bar.set_yticks([rows[c] for c in shown], [_short(classes[c]) for c in shown], fontsize=9)
    ax_bar.set_ylim(-0.6, len(shown) - 0.4)
    ax_bar.set_xlim(0.0, end)
    ax_bar.grid(axis="x", alpha=0.3)
    legend = "lower half: ground truth" if ground_truth is not None else "ground truth unknown"
    ax_bar.set_title(
        f"upper half: {len(drawn)} of {len(detections)} detections ({rule}), opacity ∝ confidence · {legend}"
        + (f" · {hidden} more classes not shown" if hidden else ""),
        fontsize=9,
        loc="left",
    )

    # Curves: seg_score of each shown class as a step function over the snippet spans.
    for c in shown:
        values = np.append(seg_score[:, c], seg_score[-1, c])
        ax_curve.step(
            edges,
            values,
            where="post",
            color=class_colour(c),
            lw=1.5,
            label=f"{_short(classes[c])} (act {act_score[c]:.2f})",
        )
    ax_curve.set_ylim(0.0, 1.0)
    ax_curve.set_xlabel("time (s)")
    ax_curve.set_ylabel("seg_score")
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(loc="upper right", fontsize=8, ncol=2 if len(shown) > 5 else 1, framealpha=0.8)
    fig.text(0.01, 0.012, CURVES_CAPTION, fontsize=8, color="0.25")
    fig.suptitle(title or Path(path).stem, fontsize=11)
    return _save(fig, path)


CURVES_CAPTION = (
    "curves: seg_score, each snippet's class score, (softmax(CAS) + actionness) / 2 · legend (act x): the class's "
    "video-level score (method §5)\nclasses with act ≥ cls_th (0.1 by default; if none, the best class) are "
    "localized: runs of snippets above thresholds (method §9), confidence = inner − outer mean score + 0.2·act, "
    "then soft-NMS"
)


def _drawn_detections(
    detections: Sequence[tuple[int, float, float, float]], show_all: bool, per_class: int
) -> tuple[list[tuple[int, float, float, float]], str]:
    """The detections plot_video draws, and the rule that chose them (said in the picture)."""
    if show_all:
        taken: Counter[int] = Counter()
        kept = []
        for d in sorted(detections, key=lambda x: -float(x[3])):  # stable: the first listed on ties
            taken[int(d[0])] += 1
            if taken[int(d[0])] <= per_class:
                kept.append(tuple(d))
        return kept, f"all, the best {per_class} per class"
    kept, _ = display_detections(detections)
    rule = f"confidence ≥ {DISPLAY_MIN_SCORE:g}, same-class overlaps at tIoU ≥ {DISPLAY_MERGE_TIOU:g} drawn once"
    return kept, rule


def bar_lanes(segments: np.ndarray) -> list[int]:
    """Lane of each bar so that bars in one lane never overlap: segments [K, 2] (start, end) → [K] lane indices.

    Shortest bars first (then by start), each into the lowest lane free over its span: the short, precise
    detections sit next to the ground truth and a long one that spans them goes above. At most MAX_LANES lanes; a
    bar that finds none free shares the last.
    """
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    taken: list[list[tuple[float, float]]] = []
    lanes = [0] * len(seg)
    for i in np.lexsort((seg[:, 0], seg[:, 1] - seg[:, 0])).tolist():
        s, e = seg[i]
        free = [k for k, lane in enumerate(taken) if all(e <= a or s >= b for a, b in lane)]
        k = free[0] if free else min(len(taken), MAX_LANES - 1)
        if k == len(taken):
            taken.append([])
        taken[k].append((s, e))
        lanes[i] = k
    return lanes


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _draw_keyframes(ax: plt.Axes, frames: list[tuple[float, np.ndarray]]) -> None:
    """A strip of thumbnails side by side (same height), each captioned with its time."""
    h = min(f.shape[0] for _, f in frames)
    tiles = [f[:h] for _, f in frames]
    gap = np.full((h, 4, 3), 255, dtype=np.uint8)
    strip = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
    ax.imshow(strip)
    x = 0
    for (t, _), tile in zip(frames, tiles, strict=True):
        ax.text(x + tile.shape[1] / 2, h + 2, f"{t:.1f} s", ha="center", va="top", fontsize=8)
        x += tile.shape[1] + gap.shape[1]
    ax.set_axis_off()


def ap_figure_height(num_classes: int) -> float:
    """Height in inches of the per-class AP chart: one 0.2-inch row per class, so 200 classes stay readable."""
    return 1.6 + 0.2 * num_classes


def plot_ap_per_class(
    path: str | os.PathLike, ap_per_class: np.ndarray, classes: Sequence[str], tious: Sequence[float]
) -> Path:
    """Horizontal bars of each class's AP averaged over the tIoU thresholds (×100), best first → `path`.

    ap_per_class [C, n_tiou]; rows that are NaN (classes without ground truth) are left out.
    Size: 800 px wide, `ap_figure_height(classes kept)`·100 px high.
    """
    ap = np.asarray(ap_per_class, dtype=np.float64).reshape(len(classes), len(tious))
    keep = np.flatnonzero(~np.isnan(ap).all(axis=1))
    mean = np.nanmean(ap[keep], axis=1) * 100 if len(keep) else np.zeros(0)
    rank = np.argsort(-mean, kind="stable")
    order, mean_sorted = keep[rank], mean[rank]
    fig, ax = plt.subplots(figsize=(8.0, ap_figure_height(len(keep))), dpi=DPI)
    y = np.arange(len(order))[::-1]
    ax.barh(y, mean_sorted, color=[class_colour(int(c)) for c in order], height=0.75)
    ax.set_yticks(y, [_short(classes[c], 36) for c in order], fontsize=8)
    ax.set_ylim(-0.6, max(len(order), 1) - 0.4)
    ax.set_xlim(0, 100)
    if len(keep):
        ax.axvline(mean.mean(), color="black", ls="--", lw=1)
    ax.set_xlabel(f"AP (%), mean over tIoU {tious[0]:g}–{tious[-1]:g}")
    ax.set_title(f"per-class AP · mAP@AVG {mean.mean() if len(keep) else 0.0:.1f}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.subplots_adjust(left=0.38, right=0.97, top=1 - 0.5 / fig.get_figheight(), bottom=0.6 / fig.get_figheight())
    return _save(fig, path)


def plot_map_vs_tiou(path: str | os.PathLike, map_per_tiou: np.ndarray, tious: Sequence[float]) -> Path:
    """mAP (×100) at each tIoU threshold, with mAP@AVG as a dashed line → `path` (PNG, 700×450 px).

    map_per_tiou [n_tiou] (what `evaluate.detection_map` returns) or per-class AP [C, n_tiou] (NaN rows = classes
    without ground truth; averaged over the others).
    """
    m = np.asarray(map_per_tiou, dtype=np.float64)
    if m.ndim == 2:
        rows = m[~np.isnan(m).all(axis=1)]
        m = rows.mean(axis=0) if len(rows) else np.zeros(m.shape[1])
    m = m.reshape(len(tious)) * 100
    fig, ax = plt.subplots(figsize=(7.0, 4.5), dpi=DPI)
    ax.plot(tious, m, marker="o", color="tab:blue")
    for t, v in zip(tious, m, strict=True):
        ax.annotate(f"{v:.1f}", (t, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.axhline(m.mean(), color="black", ls="--", lw=1, label=f"mAP@AVG {m.mean():.1f}")
    ax.set_xlabel("tIoU threshold")
    ax.set_ylabel("mAP (%)")
    ax.set_ylim(0, max(100.0, float(m.max()) + 5))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


def save_test_visuals(
    out_dir: str | os.PathLike,
    results: Mapping[str, Mapping[str, Any]],
    ground_truth: Mapping[str, Sequence[Mapping[str, Any]]],
    classes: Sequence[str],
    ap_per_class: np.ndarray,
    tious: Sequence[float],
    fps: float = 25.0,
    rate: int = 16,
    video_paths: Mapping[str, str | os.PathLike] | None = None,
    progress: bool = True,
    show_all: bool = False,
    note: str = "",
    source: str | os.PathLike = "the test split",
) -> list[Path]:
    """Pictures of a whole test run (`main.py --save_vis`) → the written paths.

    out_dir: folder, created if needed; writes `<video>.png` per video, `ap_per_class.png`, `map_vs_tiou.png`.
    results: {video: {"seg_score": [T', C] (or "cas": logits [T', C], softmaxed over C), "act_score": [C],
              "num_snippets": L, "detections": [(class_index, start_s, end_s, score)]}} (numpy arrays or tensors).
    ground_truth: {video: [{"label", "segment"}]} (Split.ground_truth); videos absent → drawn without ground truth.
    ap_per_class: [C, n_tiou] per-class AP (NaN rows = classes without ground truth), tious: the thresholds.
    video_paths: optional {video: file} for keyframe strips. show_all: see plot_video. note: added to each video
    picture's title (the demo says its features are synthetic). source: where the video names come from (the
    annotation file), named by the one-line error of a name that cannot be a file name (utils.safe_file_name).
    """
    out_dir = Path(out_dir)
    files = {name: f"{safe_file_name(name, source)}.png" for name in results}  # every name checked before any write
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, r in Progress(results.items(), desc="pictures", unit="video", enabled=progress):
        seg = _numpy(r["seg_score"]) if "seg_score" in r else _softmax(_numpy(r["cas"]))
        written.append(
            plot_video(
                out_dir / files[name],
                classes=classes,
                seg_score=seg,
                act_score=_numpy(r["act_score"]),
                num_snippets=int(r["num_snippets"]),
                detections=r["detections"],
                fps=fps,
                rate=rate,
                ground_truth=ground_truth.get(name),
                video_path=(video_paths or {}).get(name),
                title=f"{name}{note}",
                show_all=show_all,
            )
        )
    written.append(plot_ap_per_class(out_dir / "ap_per_class.png", ap_per_class, classes, tious))
    written.append(plot_map_vs_tiou(out_dir / "map_vs_tiou.png", ap_per_class, tious))
    return written


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, any device
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _softmax(cas: np.ndarray) -> np.ndarray:
    """softmax over the last axis (classes), stable."""
    z = np.exp(cas - cas.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)

"""visualise.py: every picture is a readable PNG of the promised pixel size, also for the edge cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

import visualise
from visualise import DPI, VIDEO_FIGSIZE

VIDEO_PX = (int(VIDEO_FIGSIZE[0] * DPI), int(VIDEO_FIGSIZE[1] * DPI))


def _png_size(path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 1000, f"{path} is missing or nearly empty"
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        assert len(np.unique(np.asarray(im.convert("L")))) > 2, "blank picture"
        return im.size


def _scores(rng, t: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.random((t, c)), rng.dirichlet(np.ones(c))


@pytest.mark.parametrize(
    ("t", "c", "with_dets", "with_gt"),
    [(1, 1, False, False), (2, 1, True, True), (11, 20, False, True), (30, 200, True, True), (750, 20, True, False)],
)
def test_plot_video_size_and_edge_cases(tmp_path, t, c, with_dets, with_gt):
    rng = np.random.default_rng(t * 1000 + c)
    classes = [f"class number {i} with a long name" for i in range(c)]
    seg, act = _scores(rng, t, c)
    dets = []
    if with_dets:  # many classes and overlapping proposals, like soft-NMS output
        dets = [(int(k), float(s), float(s + 2.0), float(p)) for k, s, p in zip(rng.integers(0, c, 60),
                rng.uniform(0, 10, 60), rng.random(60), strict=True)]  # fmt: skip
    gt = [{"label": classes[-1], "segment": [1.0, 3.5]}, {"label": "not a class of this model", "segment": [0, 1]}]
    out = visualise.plot_video(
        tmp_path / "v.png", classes=classes, seg_score=seg, act_score=act, num_snippets=t, detections=dets,
        ground_truth=gt if with_gt else None,
    )  # fmt: skip
    assert _png_size(out) == VIDEO_PX


def test_plot_video_with_keyframes_keeps_size(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(i * 0.5, rng.integers(0, 255, (96, 128 + 8 * i, 3), dtype=np.uint8)) for i in range(8)]
    seg, act = _scores(rng, 5, 3)
    out = visualise.plot_video(
        tmp_path / "k.png", classes=["a", "b", "c"], seg_score=seg, act_score=act, num_snippets=5,
        detections=[(1, 0.2, 1.5, 0.7)], frames=frames,
    )  # fmt: skip
    assert _png_size(out) == VIDEO_PX


def test_shown_classes_are_gt_then_detected_capped():
    act = np.array([0.1, 0.5, 0.2, 0.9, 0.3])
    dets = [(1, 0, 1, 0.5), (3, 0, 1, 0.4), (4, 0, 1, 0.1), (2, 0, 1, 0.3)]
    shown, hidden = visualise._shown_classes(dets, [(4, 0.0, 1.0), (0, 2.0, 3.0)], act, max_classes=4)
    assert shown == [4, 0, 3, 1] and hidden == 1  # GT classes by act_score, then detected ones by act_score
    assert visualise._shown_classes([], [], act, 10) == ([3], 0)  # nothing to show → the top class's curve


def test_snippet_edges_match_postprocess_frame_mapping():
    # 7 scores for L = 20 snippets of 16 frames at 25 fps: score i covers frames [i·320/7, (i+1)·320/7).
    edges = visualise.snippet_edges(7, 20, 25.0, 16)
    assert len(edges) == 8 and edges[0] == 0.0
    np.testing.assert_allclose(edges[-1], 20 * 16 / 25.0)
    np.testing.assert_allclose(np.diff(edges), 320 / 7 / 25.0)


def test_class_colours_are_fixed_and_distinct():
    colours = [visualise.class_colour(c) for c in range(200)]
    assert colours == [visualise.class_colour(c) for c in range(200)]
    assert all(0.0 <= v <= 1.0 for col in colours for v in col)
    nearest = min(np.abs(np.subtract(a, b)).max() for a, b in itertools.combinations(colours[:20], 2))
    assert nearest > 0.05, "two of the first 20 classes look alike"


@pytest.mark.parametrize("c", [1, 20, 200])
def test_plot_ap_per_class_size(tmp_path, c):
    rng = np.random.default_rng(c)
    ap = rng.random((c, 7))
    if c > 1:
        ap[0] = np.nan  # a class without ground truth is left out
    kept = c - 1 if c > 1 else c
    out = visualise.plot_ap_per_class(tmp_path / "ap.png", ap, [f"c{i}" for i in range(c)], np.linspace(0.1, 0.7, 7))
    assert _png_size(out) == (8 * DPI, round(visualise.ap_figure_height(kept) * DPI))


def test_plot_ap_per_class_all_nan(tmp_path):
    out = visualise.plot_ap_per_class(tmp_path / "ap.png", np.full((3, 2), np.nan), ["a", "b", "c"], [0.5, 0.75])
    assert _png_size(out) == (8 * DPI, round(visualise.ap_figure_height(0) * DPI))


@pytest.mark.parametrize("shape", [(7,), (20, 7), (200, 10), (1, 1)])
def test_plot_map_vs_tiou_size(tmp_path, shape):
    values = np.random.default_rng(0).random(shape)
    out = visualise.plot_map_vs_tiou(tmp_path / "m.png", values, np.linspace(0.1, 0.7, shape[-1]))
    assert _png_size(out) == (700, 450)


def test_save_test_visuals_writes_one_picture_per_video(tmp_path):
    rng = np.random.default_rng(1)
    classes = ["Diving", "HighJump", "LongJump"]
    seg, act = _scores(rng, 9, 3)
    results = {
        "video_a": {"seg_score": seg, "act_score": act, "num_snippets": 9, "detections": [(0, 1.0, 2.0, 0.8)]},
        "video_b": {"cas": rng.normal(size=(4, 3)), "act_score": act, "num_snippets": 40, "detections": []},
    }
    gt = {"video_a": [{"label": "Diving", "segment": [0.5, 2.5]}]}
    ap = rng.random((3, 7))
    paths = visualise.save_test_visuals(tmp_path / "vis", results, gt, classes, ap, np.linspace(0.1, 0.7, 7),
                                        progress=False)  # fmt: skip
    names = sorted(p.name for p in paths)
    assert names == ["ap_per_class.png", "map_vs_tiou.png", "video_a.png", "video_b.png"]
    assert _png_size(tmp_path / "vis" / "video_b.png") == VIDEO_PX
    assert not list((tmp_path / "vis").glob(".*.tmp")), "atomic writes left a temporary file"


def test_bar_lanes_never_overlap_and_short_bars_go_low():
    whole, a, b, inside_a = (0.0, 70.0), (2.0, 8.0), (14.0, 18.0), (3.0, 5.0)
    assert visualise.bar_lanes(np.array([whole, a, b, inside_a])) == [2, 1, 0, 0]
    assert visualise.bar_lanes(np.zeros((0, 2))) == []
    assert visualise.bar_lanes(np.array([(0.0, 1.0), (1.0, 2.0)])) == [0, 0], "touching bars share a lane"
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 50, 40)
    seg = np.stack([starts, starts + rng.uniform(0.1, 10, 40)], axis=1)
    lanes = visualise.bar_lanes(seg)
    assert max(lanes) == visualise.MAX_LANES - 1
    for k in range(visualise.MAX_LANES - 1):  # below the last lane (which takes the rest), no two bars overlap
        mine = seg[np.array(lanes) == k]
        mine = mine[np.argsort(mine[:, 0])]
        assert (mine[1:, 0] >= mine[:-1, 1]).all()


def test_plot_video_draws_the_readable_list_or_all(tmp_path, monkeypatch):
    drawn = []
    real = visualise._drawn_detections
    monkeypatch.setattr(visualise, "_drawn_detections", lambda *a: drawn.append(real(*a)) or drawn[-1])
    rng = np.random.default_rng(3)
    seg, act = _scores(rng, 20, 2)
    dets = [(0, 1.0, 3.0, 0.5), (0, 1.0, 3.0, 0.07), (0, 1.1, 3.0, 0.3), (1, 5.0, 6.0, 0.1)]
    for show_all in (False, True):
        visualise.plot_video(tmp_path / "v.png", classes=["a", "b"], seg_score=seg, act_score=act, num_snippets=20,
                             detections=dets, show_all=show_all)  # fmt: skip
    assert drawn[0][0] == [dets[0]] and "confidence ≥ 0.2" in drawn[0][1]  # decays merged, the floor drops class b
    assert drawn[1][0] == [dets[0], dets[2], dets[3], dets[1]] and drawn[1][1] == "all, the best 10 per class"

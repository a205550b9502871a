"""Localize actions in your own video(s): decode → TV-L1 flow → I3D features → ACRNet → method §9 → table/JSON/CSV/PNG.

Entry point: `python main.py --video clip.mp4 --model_file X.pth --data_name thumos14 --rgb_weights rgb.pt
--flow_weights flow.pt [--save_path out]` (main.py dispatches to `run(cfg)`); `--video` may also be a folder.

Per video `<stem>` (the file name without extension) it writes, in `<save_path>`:
- `features/<stem>_rgb.npy`, `features/<stem>_flow.npy` (float32 [L, 1024], the authors' layout) and
  `features/<stem>.json` (what they were made from): a later run reuses them when they are valid and were made from
  the same video file (and the same I3D weights, when given), so extraction runs once per video;
- `<stem>_detections.json` (ActivityNet results layout, plus per-video info), `<stem>_detections.csv`, `<stem>.png`.

Class names travel with checkpoints written by this project (utils.save_checkpoint); the authors' plain state-dicts
take them from --data_name (THUMOS14's fixed 20, or ActivityNet's annotation file).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils import (
    InputError,
    OutputError,
    Progress,
    StageClock,
    atomic_csv_write,
    atomic_json_dump,
    atomic_np_save,
    format_table,
    load_checkpoint,
    prepare_output_dir,
    remove_stale_temps,
    resolve_device,
    safe_file_name,
)

TABLE_ROWS = 20  # the terminal shows the best detections; the JSON/CSV hold all of them
STAGES = ("decode", "flow", "i3d", "acrnet", "outputs")  # per-video times (StageClock names), in pipeline order
STAGE_LABELS = {"decode": "decode", "flow": "flow", "i3d": "I3D", "acrnet": "ACRNet", "outputs": "outputs"}
EXTRACTION = ("decode", "flow", "i3d")  # the stages a cached video skips


# --- model and class names -----------------------------------------------------------------------------------------


def class_names_for(data_name: str, data_path: str | os.PathLike | None, annotation_file: str | None) -> list[str]:
    """Class list (sorted names, = class indices) for a dataset, for checkpoints that do not carry their own."""
    import dataset

    if data_name == "thumos14":
        return list(dataset.THUMOS14_CLASSES)
    path = annotation_path(data_name, data_path, annotation_file)
    if path is None or not Path(path).exists():
        where = f" ({path} not found)" if path else ""
        raise InputError(
            f"--data_name {data_name}: the checkpoint carries no class names and the annotation file with them is "
            f"missing{where}; pass --annotation_file or --data_path"
        )
    return list(dataset.class_names(dataset.read_annotations(path)))


def annotation_path(
    data_name: str, data_path: str | os.PathLike | None, annotation_file: str | os.PathLike | None
) -> Path | None:
    """--annotation_file if given, else the dataset's annotation file under --data_path (method §7.1), else None."""
    import dataset

    if annotation_file:
        return Path(annotation_file)
    dataset.dataset_info(data_name)  # unknown name → one-line error, even without --data_path
    if data_path is None:
        return None
    try:  # dataset.py's own search (the authors' layout, or data_path = the dataset folder itself)
        return dataset.find_annotation_file(data_path, data_name)
    except InputError:
        return None


def load_model(cfg: Any, device: torch.device) -> tuple[torch.nn.Module, list[str], Any]:
    """ACRNet from --model_file in eval mode on `device` → (net, classes, settings).

    Classes: the checkpoint's own list if it carries one, else `class_names_for(--data_name)`; the head size must
    equal the class count (else a one-line InputError). `settings` is `cfg` (a copy), except that a checkpoint of
    this project brings its own `pool`, and — when it was trained on another dataset than --data_name — its own
    data_name, num_seg and alpha (the test-time settings of that dataset, method §8).
    """
    from config import stored_setting
    from model import ACRNet

    if not getattr(cfg, "model_file", None):
        from config import CHECKPOINT_HELP

        raise InputError(f"--video needs --model_file, a trained ACRNet checkpoint: {CHECKPOINT_HELP}")
    path = Path(cfg.model_file)
    state_dict, meta = load_checkpoint(path)
    found = int(state_dict["cas_rgb_encoder.2.weight"].shape[0])
    settings = copy.copy(cfg)
    if meta and meta.get("classes"):
        classes, source = [str(c) for c in meta["classes"]], "its own class list"
        trained = meta.get("config") or {}
        if meta.get("data_name") and meta["data_name"] != cfg.data_name:
            print(f"note: {path.name} was trained on {meta['data_name']}; using its settings, not --data_name's")
            settings.data_name = meta["data_name"]
            for key in ("num_seg", "alpha"):
                if key in trained:
                    setattr(settings, key, stored_setting(path, key, trained[key]))
        if "pool" in trained:  # structural: must be what the weights were trained with
            settings.pool = stored_setting(path, "pool", trained["pool"], flag_replaces=False)
    else:
        classes = class_names_for(cfg.data_name, cfg.data_path, getattr(cfg, "annotation_file", None))
        source = f"--data_name {cfg.data_name}"
    if found != len(classes):
        raise InputError(f"{path}: checkpoint is for {found} classes, but {source} has {len(classes)}")
    net = ACRNet(found, pool=bool(settings.pool))
    try:
        net.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: does not fit ACRNet({found}, pool={settings.pool}): {detail}") from None
    return net.to(device).eval(), classes, settings


# --- features ------------------------------------------------------------------------------------------------------


def _file_id(path: str | os.PathLike | None) -> dict[str, Any] | None:
    """Identity of a file for the cache: size and SHA-1 of its first MiB (cheap; survives copies, unlike mtime)."""
    if not path:
        return None
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    return {"name": path.name, "size": path.stat().st_size, "sha1_head": hashlib.sha1(head).hexdigest()}


def feature_paths(
    save_path: str | os.PathLike, stem: str, source: str | os.PathLike = "--video"
) -> tuple[Path, Path, Path]:
    """(rgb .npy, flow .npy, sidecar .json) of a video's cached features under `<save_path>/features/`; `stem` must
    be a file name (utils.safe_file_name; `source` is where it came from)."""
    stem = safe_file_name(stem, source)
    d = Path(save_path) / "features"
    return d / f"{stem}_rgb.npy", d / f"{stem}_flow.npy", d / f"{stem}.json"


def load_cached_features(
    save_path: str | os.PathLike, video_path: str | os.PathLike, weights: dict[str, str | None], flow: str = "tvl1"
) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (rgb [L, 1024], flow [L, 1024]) of `video_path`, or None when absent, stale or invalid.

    Valid = both files finished feature files (extract.valid_features: float32 [L ≥ 1, 1024], finite) of the same L,
    and the sidecar says they were made from this video file (size + head hash), with the optical flow `flow`
    (sidecars without the key predate tvl1.py: OpenCV's CPU flow) and, for each of `weights` given now, from that same
    weights file.
    """
    from extract import valid_features

    rgb_path, flow_path, meta_path = feature_paths(save_path, Path(video_path).stem, Path(video_path).parent)
    if not (meta_path.is_file() and valid_features(rgb_path) and valid_features(flow_path)):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("video") != _file_id(video_path) or meta.get("flow", "opencv") != flow:
        return None
    if any(path and meta.get(key) != _file_id(path) for key, path in weights.items()):
        return None
    rgb_feats, flow_feats = np.load(rgb_path), np.load(flow_path)  # (`flow` is the optical-flow method)
    return (rgb_feats, flow_feats) if rgb_feats.shape == flow_feats.shape else None


class FeatureSource:
    """Features of a video: from the cache when valid, else extracted (I3D nets loaded once, on first need).

    `extract_fn(video_path) -> (rgb [L, 1024], flow [L, 1024])` replaces the I3D extraction (tests); by default it
    is `extract.extract_video` with the --rgb_weights / --flow_weights nets.
    """

    def __init__(self, cfg: Any, device: torch.device, extract_fn: Callable[[Path], Any] | None = None) -> None:
        self.cfg, self.device = cfg, device
        self.weights = {k: getattr(cfg, k, None) for k in ("rgb_weights", "flow_weights")}
        self.flow = getattr(cfg, "flow", "tvl1")  # main.py's --flow: tvl1 or opencv
        self._nets: tuple[torch.nn.Module, torch.nn.Module] | None = None
        self._extract = extract_fn

    def _extract_i3d(self, video_path: Path, clock: StageClock) -> tuple[np.ndarray, np.ndarray]:
        import extract
        import video

        nets = self.nets()
        total = video.probe_video(video_path).num_frames_25 - 1
        shown = getattr(self.cfg, "progress", True)  # --no_progress
        desc = f"{video_path.name}: flow + I3D"
        with Progress(total=total, desc=desc, unit="frame", enabled=shown) as bar:
            return extract.extract_video(video_path, *nets, self.device, progress=bar, flow=self.flow, clock=clock)

    def check(self, videos: Sequence[Path]) -> None:
        """Before any work: the weights files given exist, and both are given unless every video's features are
        cached (else one InputError line saying where to get them)."""
        from i3d import WEIGHTS_HELP

        for key, path in self.weights.items():
            if path and not Path(path).is_file():
                raise InputError(f"{path}: I3D weights file not found (--{key}); {WEIGHTS_HELP}")
        if self._extract is None and not all(self.weights.values()):
            for v in videos:
                if load_cached_features(self.cfg.save_path, v, self.weights, self.flow) is None:
                    raise self._missing_weights(f"{v.name} (no cached features)")

    def _missing_weights(self, what: str) -> InputError:
        from i3d import WEIGHTS_HELP

        missing = " and ".join(f"--{k}" for k, v in self.weights.items() if not v)
        return InputError(f"{what} needs {missing} (I3D weights): {WEIGHTS_HELP}")

    def nets(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        if self._nets is None:
            from i3d import load_i3d

            if not all(self.weights.values()):
                raise self._missing_weights("feature extraction")
            rgb = load_i3d(self.weights["rgb_weights"], 3).to(self.device)
            flow = load_i3d(self.weights["flow_weights"], 2).to(self.device)
            self._nets = (rgb, flow)
        return self._nets

    def __call__(
        self, video_path: str | os.PathLike, clock: StageClock | None = None
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """→ (rgb [L, 1024], flow [L, 1024], came from the cache). `clock` gets decode / flow / i3d times."""
        cached = load_cached_features(self.cfg.save_path, video_path, self.weights, self.flow)
        if cached is not None:
            return *cached, True
        if self._extract is None:
            rgb, flow = self._extract_i3d(Path(video_path), clock or StageClock())
        else:
            rgb, flow = self._extract(Path(video_path))
        rgb, flow = np.ascontiguousarray(rgb, dtype=np.float32), np.ascontiguousarray(flow, dtype=np.float32)
        if len(rgb) < 1:
            raise InputError(f"{video_path}: too short for one 16-frame snippet at 25 fps")
        rgb_path, flow_path, meta_path = feature_paths(
            self.cfg.save_path, Path(video_path).stem, Path(video_path).parent
        )
        atomic_np_save(rgb, rgb_path)
        atomic_np_save(flow, flow_path)
        meta = {"video": _file_id(video_path), "flow": self.flow, **{k: _file_id(v) for k, v in self.weights.items()}}
        atomic_json_dump(meta, meta_path, indent=1)  # written last: it is what makes the pair a valid cache entry
        return rgb, flow, False


# --- inference -----------------------------------------------------------------------------------------------------


@torch.inference_mode()
def infer_scores(
    net: torch.nn.Module, rgb: np.ndarray, flow: np.ndarray, num_seg: int
) -> tuple[np.ndarray, np.ndarray]:
    """One video through ACRNet with test sampling (method §7.3) → (act_score [C], seg_score [T', C]) as float64.

    rgb, flow [L, 1024]; T' = min(L, num_seg). The net's device is used; eval mode is the caller's (load_model).
    """
    from dataset import sample_test_indices

    idx = np.asarray(sample_test_indices(len(rgb), num_seg))
    x = torch.from_numpy(np.concatenate([rgb[idx], flow[idx]], axis=1)[None])  # [1, T', 2048]
    out = net(x.to(next(net.parameters()).device))
    return out.act_score[0].double().cpu().numpy(), out.seg_score[0].double().cpu().numpy()


def _detect(act_score: np.ndarray, seg_score: np.ndarray, num_snippets: int, cfg: Any) -> list[tuple]:
    """method §9 steps 2–5 with the run's settings, best score first (stable, so ties keep the method's order)."""
    from postprocess import detect

    found = detect(
        act_score,
        seg_score,
        num_snippets,
        cls_th=cfg.cls_th,
        act_th=np.asarray(cfg.act_th),
        alpha=cfg.alpha,
        iou_th=cfg.iou_th,
        fps=cfg.fps,
        rate=cfg.rate,
    )
    order = np.argsort([-float(d[3]) for d in found], kind="stable")
    return [tuple(found[i]) for i in order]


def localize_features(
    net: torch.nn.Module, rgb: np.ndarray, flow: np.ndarray, classes: Sequence[str], cfg: Any
) -> list[dict[str, Any]]:
    """Detections of one video from its features: rgb, flow [L, 1024] → [{"label", "score", "segment": [s, e]}],
    best score first. Uses cfg.num_seg, cls_th, act_th, alpha, iou_th, fps, rate."""
    act, seg = infer_scores(net, rgb, flow, cfg.num_seg)
    return detections_as_records(_detect(act, seg, len(rgb), cfg), classes)


def detections_as_records(detections: Sequence[tuple], classes: Sequence[str]) -> list[dict[str, Any]]:
    """[(class_index, start_s, end_s, score)] → [{"label", "score", "segment"}] (the ActivityNet results layout)."""
    return [{"label": classes[int(c)], "score": float(p), "segment": [float(s), float(e)]} for c, s, e, p in detections]


# --- outputs -------------------------------------------------------------------------------------------------------


def shown_detections(found: Sequence[tuple], classes: Sequence[str], show_all: bool = False) -> list[dict[str, Any]]:
    """The rows a person reads: [(class_index, start_s, end_s, score)] best first → records (label, score, segment)
    of postprocess.display_detections (a confidence floor, same-class overlaps once), each with "merged": how many
    other detections above the floor it stands for; with `show_all` every detection (no "merged")."""
    from postprocess import display_detections

    if show_all:
        return detections_as_records(found, classes)
    shown, merged = display_detections(found)
    return [{**r, "merged": m} for r, m in zip(detections_as_records(shown, classes), merged, strict=True)]


def shown_note(shown: int, total: int, show_all: bool = False) -> str:
    """One line that says which detections the table and the picture show, and where the others are."""
    from postprocess import DISPLAY_MERGE_TIOU, DISPLAY_MIN_SCORE

    if show_all:
        return f"all {total} detections (--show_all), best first"
    return (
        f"{shown} of {total} detections shown: confidence ≥ {DISPLAY_MIN_SCORE:g}, same-class overlaps at tIoU ≥ "
        f"{DISPLAY_MERGE_TIOU:g} merged into the best ('merged' counts the others); all {total} are in the JSON/CSV, "
        "--show_all shows them"
    )


def detections_table(records: Sequence[dict[str, Any]], limit: int = TABLE_ROWS) -> str:
    """The terminal table: class | start (s) | end (s) | confidence [| merged], `limit` best rows and a count of the
    rest; the "merged" column when the records carry it (shown_detections)."""
    if not records:
        return "(no detections)"
    merged = all("merged" in r for r in records)
    rows = [
        [r["label"], f"{r['segment'][0]:.2f}", f"{r['segment'][1]:.2f}", f"{r['score']:.4f}"]
        + ([str(r["merged"]) if r["merged"] else ""] if merged else [])
        for r in records[:limit]
    ]
    table = format_table(["class", "start (s)", "end (s)", "confidence"] + (["merged"] if merged else []), rows)
    if len(records) > limit:
        table += f"\n… {len(records) - limit} more (all in the JSON/CSV)"
    return table


def write_csv(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Atomically write `class,start_s,end_s,confidence` rows (full float precision)."""
    rows = ([r["label"], repr(r["segment"][0]), repr(r["segment"][1]), repr(r["score"])] for r in records)
    atomic_csv_write(path, ["class", "start_s", "end_s", "confidence"], rows)


def find_videos(path: str | os.PathLike) -> list[Path]:
    """--video: one file, or the video files (by extension) directly inside a folder, sorted by name."""
    import video

    path = Path(path)
    if path.is_file():
        safe_file_name(path.stem, path.parent, "video file name")  # it names the outputs: <stem>_detections.json ...
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such video file or folder")
    extensions = {*video.VIDEO_EXTENSIONS, ".ts"}
    videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not videos:
        raise InputError(f"{path}: folder holds no video files ({', '.join(sorted(extensions))})")
    stems = [safe_file_name(p.stem, path, "video file name") for p in videos]  # they name the outputs
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(f"{path}: several videos share the name {dup[0]!r} (outputs are named by it); rename them")
    return videos


def annotations_at_hand(cfg: Any, data_name: str) -> dict[str, dict[str, Any]]:
    """The dataset's annotations when the file is at hand (to draw ground truth in pictures), else {}."""
    import dataset

    try:
        path = annotation_path(data_name, cfg.data_path, getattr(cfg, "annotation_file", None))
        return dataset.read_annotations(path) if path is not None and path.exists() else {}
    except InputError:
        return {}


def ground_truth_of(stem: str, annotations: dict[str, dict[str, Any]]) -> list[dict[str, Any]] | None:
    """[{"label", "segment"}] of a video named `stem` (ActivityNet's `v_` prefix or not), None if not annotated."""
    import dataset

    try:
        return dataset.ground_truth(annotations, [stem])[stem]
    except InputError:
        return None


def localize_video(
    video_path: str | os.PathLike,
    net: torch.nn.Module,
    classes: Sequence[str],
    cfg: Any,
    features: FeatureSource,
    ground_truth: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything for one video: features (cached), scores, detections, the three files and the picture.

    → {"video", "num_snippets", "detections" (all records), "shown" (shown_detections), "json", "csv", "png",
    "cached", "seconds"}; "seconds" holds
    the wall time of each of STAGES (0 for the extraction stages when the features came from the cache) and "total".
    """
    import video
    import visualise

    video_path = Path(video_path)
    stem = safe_file_name(video_path.stem, video_path.parent, "video file name")  # it names the files written below
    save = Path(cfg.save_path)
    t0 = time.perf_counter()
    clock = StageClock()
    probe = video.probe_video(video_path)  # unreadable / empty / no video stream → one-line InputError, early
    rgb, flow, cached = features(video_path, clock)
    with clock("acrnet"):  # the network and method §9 post-processing
        act, seg = infer_scores(net, rgb, flow, cfg.num_seg)
        found = _detect(act, seg, len(rgb), cfg)
        records = detections_as_records(found, classes)
        shown = shown_detections(found, classes, getattr(cfg, "show_all", False))
    info = {
        "file": str(video_path),
        "duration_s": float(probe.duration_s),
        "num_snippets": len(rgb),
        "seconds_covered": len(rgb) * cfg.rate / cfg.fps,
        "model_file": str(cfg.model_file),
        "predicted_classes": sorted({r["label"] for r in records}),
    }
    payload = {"version": "ACRNet localize", "results": {stem: records}, "external_data": {}, "info": {stem: info}}
    json_path, csv_path = save / f"{stem}_detections.json", save / f"{stem}_detections.csv"
    with clock("outputs"):
        atomic_json_dump(payload, json_path, indent=1)
        write_csv(records, csv_path)
        png = visualise.plot_video(
            save / f"{stem}.png",
            classes=classes,
            seg_score=seg,
            act_score=act,
            num_snippets=len(rgb),
            detections=found,
            fps=cfg.fps,
            rate=cfg.rate,
            ground_truth=ground_truth,
            video_path=video_path,
            title=f"{stem} — {Path(cfg.model_file).name}",
            show_all=getattr(cfg, "show_all", False),
        )
    seconds = {stage: clock.seconds.get(stage, 0.0) for stage in STAGES}
    seconds["total"] = time.perf_counter() - t0
    return {
        "video": stem,
        "num_snippets": len(rgb),
        "detections": records,
        "shown": shown,
        "json": json_path,
        "csv": csv_path,
        "png": png,
        "cached": cached,
        "seconds": seconds,
    }


def run(cfg: Any, extract_fn: Callable[..., Any] | None = None, header: str | None = None) -> int:
    """`main.py --video PATH`: localize actions in one video or every video of a folder → exit code.

    cfg: main's config (data_path, data_name, save_path, model_file, num_seg, cls_th, iou_th, act_th, alpha, fps,
    rate, device, video, rgb_weights, flow_weights; optional annotation_file). One video: bad input raises InputError
    (main prints one line, exit 2). A folder: a failing video is reported on one line, the others still run, and the
    summary lists the failures; returns 1 if any failed, else 0. `extract_fn`: see FeatureSource (tests). `header`
    (main's config line) is printed once every input is checked, so a bad one is the first and only line.
    """
    device = resolve_device(str(cfg.device))
    videos = find_videos(cfg.video)
    folder = Path(cfg.video).is_dir()
    net, classes, cfg = load_model(cfg, device)
    if not folder:  # one video: an unreadable file is its one line (a folder run reports it and goes on)
        import video

        video.probe_video(videos[0])
    features = FeatureSource(cfg, device, extract_fn)
    features.check(videos)  # I3D weights, unless every video's features are cached
    save = prepare_output_dir(cfg.save_path, "--save_path")  # inputs are valid: now writable (else one line), no temps
    remove_stale_temps(save / "features")
    progress = getattr(cfg, "progress", True)  # --no_progress
    annotations = annotations_at_hand(cfg, cfg.data_name)
    if header:
        print(header)
    print(
        f"ACRNet {Path(cfg.model_file).name}: {len(classes)} classes ({cfg.data_name}), device {device}; "
        f"{len(videos)} video(s) → {cfg.save_path}"
    )
    done: list[dict[str, Any]] = []
    failed: list[tuple[Path, str]] = []
    shown = Progress(videos, desc="videos", unit="video", enabled=folder and progress)
    for video_path in shown:
        try:
            result = localize_video(
                video_path, net, classes, cfg, features, ground_truth_of(video_path.stem, annotations)
            )
        except OutputError:
            raise  # a full or read-only output folder fails every video alike: stop with its one line
        except Exception as e:  # noqa: BLE001 — a folder run reports a broken video and goes on
            if not folder:
                raise
            msg = str(e) if isinstance(e, InputError) else f"{video_path}: {type(e).__name__}: {e}"
            shown.write(f"error: {msg}", file=sys.stderr)  # above the progress bar, on a line of its own
            failed.append((video_path, msg))
            continue
        done.append(result)
        where = "cached features" if result["cached"] else "extracted features"
        files = ", ".join(result[k].name for k in ("json", "csv", "png"))
        shown.write(
            f"\n{video_path.name}: {result['num_snippets']} snippets ({where}), "
            f"{len(result['detections'])} detections → {files}\n  time: {stage_times(result)}"
        )
        shown.write(shown_note(len(result["shown"]), len(result["detections"]), getattr(cfg, "show_all", False)))
        shown.write(detections_table(result["shown"]))
    print(_summary(done, failed))
    return 1 if failed else 0


def _seconds(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def stage_times(result: dict[str, Any]) -> str:
    """One video's times → `decode 0.61 s, flow 872.1 s, I3D 84.5 s, ACRNet 0.31 s, outputs 0.82 s (total 958.3 s)`;
    cached features show as `features cached` instead of the three extraction stages."""
    sec, cached = result["seconds"], result["cached"]
    parts = ["features cached"] if cached else []
    parts += [f"{STAGE_LABELS[s]} {_seconds(sec[s])} s" for s in STAGES if not (cached and s in EXTRACTION)]
    return ", ".join(parts) + f" (total {_seconds(sec['total'])} s)"


def _summary(done: Sequence[dict[str, Any]], failed: Sequence[tuple[Path, str]]) -> str:
    """End-of-run table: one row per video (best detection and stage times, or the error), a total row for several."""
    head = ["video", "snippets", "detections", "best detection"]
    head += [f"{STAGE_LABELS[s]} (s)" for s in STAGES] + ["total (s)"]
    rows = []
    for r in done:
        best = r["detections"][0] if r["detections"] else None
        label = (
            f"{best['label']} {best['segment'][0]:.1f}–{best['segment'][1]:.1f} s ({best['score']:.2f})"
            if best
            else "-"
        )
        sec = r["seconds"]
        times = ["cached" if r["cached"] and s in EXTRACTION else _seconds(sec[s]) for s in STAGES]
        rows.append((r["video"], r["num_snippets"], len(r["detections"]), label, *times, _seconds(sec["total"])))
    if len(done) > 1:
        sums = [_seconds(sum(r["seconds"][s] for r in done)) for s in (*STAGES, "total")]
        rows.append(("all", sum(r["num_snippets"] for r in done), sum(len(r["detections"]) for r in done), "", *sums))
    for path, msg in failed:
        rows.append((path.stem, "-", "-", f"FAILED: {msg}", *["-"] * (len(STAGES) + 1)))
    table = format_table(head, rows, align="lrrl" + "r" * (len(STAGES) + 1))
    tail = f"{len(done)} done, {len(failed)} failed"
    return f"\nsummary:\n{table}\n{tail}"

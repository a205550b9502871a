"""Datasets (method §7): the one place that knows annotation formats, feature layouts, splits and snippet sampling.

    split = load_split("data", "thumos14", "train")            # validates every feature file once
    ds = FeatureDataset(split, num_seg=750, mode="train")        # ds[i] or ds[(i, seed)]
    x, y, video, L = ds[(0, 1234)]                               # x [750, 2048] float32 (rgb ‖ flow), y [C]

`python dataset.py ...` is the two-stage "frames & flow" command of the authors' repository (see video.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from utils import (
    InputError,
    JSONNumber,
    Progress,
    atomic_text_write,
    number_problem,
    read_json,
    safe_file_name,
    warn_once,
)
from wtalc import (
    WTALC_FEATURES,
    WTALC_NAMES,
    is_wtalc_annotations,
    read_wtalc_annotations,
    read_wtalc_features,
    wtalc_names_and_classes,
)

FEATURE_DIM = 1024  # channels per modality (I3D Mixed_5c)
AMBIGUOUS_LABEL = "Ambiguous"  # THUMOS14's "Ambiguous" segments feed the prediction filter (method §9.7), not a class
MIN_SNIPPETS = 11  # method §7.2: videos with L <= 10 snippets are skipped
FPS, RATE = 25.0, 16  # a snippet is 16 frames decoded at 25 fps (method §1): L ≈ duration · 25 / 16
SNIPPET_SLACK = 4  # snippets L may differ from duration · fps / rate (rounded durations, trailing frames) ...
SNIPPET_SLACK_FRACTION = 0.05  # ... or this fraction of it, whichever is larger, before a warning
SHIPPED_AMBIGUOUS = Path(__file__).resolve().parent / "result" / "ambiguous.txt"  # THUMOS14's Ambiguous_test.txt

THUMOS14_CLASSES: list[str] = [
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving", "CricketBowling", "CricketShot",
    "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault",
    "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus", "VolleyballSpiking",
]  # fmt: skip


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset lives under `<data_path>` and its protocol (method §7, §10). Paths are relative to data_path."""

    name: str
    folder: str  # e.g. "thumos14": the dataset's folder under <data_path>
    annotation_files: tuple[str, ...]  # candidates, first existing wins (a .json file or a THUMOS14 txt folder)
    feature_dirs: tuple[tuple[str, str], ...]  # (split, folder): ("train", "thumos14/features/val"), ...
    train_subset: str
    test_subset: str
    dropped_test: tuple[str, ...]  # test videos removed for annotation errors (method §7.2)
    tiou_thresholds: tuple[float, ...]  # evaluation tIoUs (method §10), exactly numpy.linspace's values
    num_classes: int
    other_subsets: tuple[str, ...] = ()  # subsets of the official files that no split uses (ActivityNet's "testing")

    def feature_dir(self, split: str) -> str:
        return dict(self.feature_dirs)[split]

    @property
    def subsets(self) -> tuple[str, ...]:
        return (self.train_subset, self.test_subset, *self.other_subsets)


DATASETS: dict[str, DatasetInfo] = {
    "thumos14": DatasetInfo(
        name="thumos14",
        folder="thumos14",
        # annotations.json, else the official per-class txt files (in one of these folders, or in thumos14/ itself
        # as annotations_val/ + annotations_test/)
        annotation_files=("thumos14/annotations.json", "thumos14/annotations", "thumos14/official", "thumos14"),
        feature_dirs=(("train", "thumos14/features/val"), ("test", "thumos14/features/test")),
        train_subset="val",
        test_subset="test",
        dropped_test=("video_test_0000270", "video_test_0001292", "video_test_0001496"),
        tiou_thresholds=tuple(np.linspace(0.1, 0.7, 7).tolist()),
        num_classes=20,
    ),
    **{
        f"activitynet{v}": DatasetInfo(
            name=f"activitynet{v}",
            folder="activitynet",
            annotation_files=(
                f"activitynet/annotations_{v}.json",
                f"activitynet/activity_net.v{v.replace('.', '-')}.min.json",  # the official download's name
            ),
            feature_dirs=(("train", "activitynet/features/training"), ("test", "activitynet/features/validation")),
            train_subset="training",
            test_subset="validation",
            dropped_test=(),
            tiou_thresholds=tuple(np.linspace(0.5, 0.95, 10).tolist()),
            num_classes=n,
            other_subsets=("testing",),  # no public labels
        )
        for v, n in (("1.2", 100), ("1.3", 200))
    },
}


def dataset_info(data_name: str) -> DatasetInfo:
    """`DATASETS[data_name]`, or InputError naming the known datasets."""
    if data_name not in DATASETS:
        raise InputError(f"--data_name {data_name!r}: unknown dataset; known: {', '.join(DATASETS)}")
    return DATASETS[data_name]


# --- annotation readers ------------------------------------------------------------------------------------------
# All readers return the same flat form:
#   {video_id: {"subset": str, "duration": float | None, "annotations": [{"label": str, "segment": [s, e]}]}}
# (a JSON file's annotations also keep the CHARACTERISTIC_FIELDS below when they carry them)

Annotations = dict[str, dict[str, Any]]
# Per-instance characteristics that a DETAD (Alwassel et al., ECCV 2018) "augmented" annotation file stores beside
# label and segment (diagnose.py); kept by the JSON reader under these names (DETAD's THUMOS14 validation file
# spells one of them `num_instances`).
CHARACTERISTIC_FIELDS = {
    "length": "length",
    "coverage": "coverage",
    "num-instances": "num-instances",
    "num_instances": "num-instances",
    "context-size": "context-size",
    "context-distance": "context-distance",
    "agreement": "agreement",
}

_THUMOS_TXT = re.compile(r"^(?P<label>.+)_(?P<subset>val|test)\.txt$")


def read_annotations(path: str | os.PathLike) -> Annotations:
    """Read any supported annotation source into the flat form above.

    Accepted: a flat JSON `{video: {"subset", "annotations", ["duration"]}}` (THUMOS14 annotations.json); the
    official ActivityNet JSON `{"version", "database": {video: ...}}`; a THUMOS14 official per-class txt file
    `<Class>_<val|test>.txt` or a folder of them (also inside annotations_val/ and annotations_test/ subfolders);
    a W-TALC `<Name>-Annotations/` folder of .npy files (`read_wtalc_annotations`).
    `Ambiguous_*.txt` is not a class (see `read_ambiguous`). Malformed input → InputError naming the file; every
    format's segments then pass `check_segments`.
    """
    return check_segments(_read_any_annotations(Path(path)), path)


def _read_any_annotations(path: Path) -> Annotations:
    if path.is_dir() and is_wtalc_annotations(path):  # a W-TALC `<Name>-Annotations/` folder (wtalc.py)
        return read_wtalc_annotations(path)
    if path.is_dir():
        files = _thumos_txt_files(path)
        if not files:
            raise InputError(
                f"{path}: no THUMOS14 annotation files (<Class>_val.txt / <Class>_test.txt) in this folder"
            )
        out: Annotations = {}
        for f in files:
            _read_thumos_txt(f, out)
        return out
    if not path.is_file():
        raise InputError(f"{path}: annotation file not found")
    if path.suffix == ".txt":
        if not _is_class_txt(path.name):
            raise InputError(f"{path}: not a THUMOS14 class annotation file (<Class>_val.txt or <Class>_test.txt)")
        out = {}
        _read_thumos_txt(path, out)
        return out
    return _read_json_annotations(path)


def _is_class_txt(name: str) -> bool:
    """`<Class>_<val|test>.txt`, and not `Ambiguous_*.txt` (the §9.7 filter, not a class)."""
    return _THUMOS_TXT.match(name) is not None and not name.startswith("Ambiguous_")


def _thumos_txt_files(folder: Path) -> list[Path]:
    """Class txt files in `folder` and its immediate subfolders (the official annotations_val/, annotations_test/)."""
    candidates = sorted(folder.glob("*.txt")) + sorted(folder.glob("*/*.txt"))
    return [f for f in candidates if _is_class_txt(f.name)]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({type(e).__name__})") from None


def _seconds(text: str) -> float | None:
    """A txt file's number → float (inf for 1e400 or 400 digits, nan for 'nan'), or None if it is no number."""
    try:
        return float(text)
    except ValueError:
        return None


def _parse_segment_lines(path: Path) -> list[tuple[str, float, float]]:
    """Lines `video start end` (any whitespace; blank lines ignored) → [(video, start, end)]."""
    rows = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise InputError(f"{path}:{lineno}: expected 'video start end' (seconds), got {line.strip()[:80]!r}")
        start, end = _seconds(parts[1]), _seconds(parts[2])
        for name, text, value in (("start", parts[1], start), ("end", parts[2], end)):
            if value is None or not math.isfinite(value):
                problem = number_problem(text if value is None else JSONNumber(text))  # as written, shortened
                raise InputError(f"{path}:{lineno}: video {parts[0]}: segment {name} {problem}")
        problem = segment_problem(start, end)
        if problem is not None:
            raise InputError(f"{path}:{lineno}: video {parts[0]}: {problem}")
        rows.append((parts[0], start, end))
    return rows


# --- segment checks (every reader's output) ------------------------------------------------------------------------
# Reversed or non-finite segments are errors: such an instance can never be matched and silently lowers mAP.
# Zero-length ones, negative starts and spans past the video's end occur in the official files (THUMOS14: 30 segments
# start after their video's end; ActivityNet 1.2 / 1.3: 10 / 12 of zero length): they are kept as published, so the
# published protocol's numbers stay, and counted in one warning line (docs/evaluate.md says how they score).

DURATION_SLACK_S = 1.0  # official durations are rounded: ActivityNet's segments end up to 0.85 s past them


def segment_problem(start: float, end: float) -> str | None:
    """Why [start, end] (seconds) cannot be a segment → a phrase, or None: not finite, or ending before it starts."""
    if not (math.isfinite(start) and math.isfinite(end)):
        return f"segment [{start}, {end}] is not finite"
    if end < start:
        return f"segment [{start}, {end}] ends before it starts"
    return None


def segment_oddities(start: float, end: float, duration: float | None = None) -> list[str]:
    """The kinds of odd-but-kept segment [start, end] is: zero length, negative start, past the video's end."""
    odd = []
    if end == start:
        odd.append("have zero length")
    if start < 0:
        odd.append("start before 0 s")
    if duration is not None and end > duration + DURATION_SLACK_S:
        odd.append(f"end over {DURATION_SLACK_S:g} s past their video's duration")
    return odd


def warn_odd_segments(source: str | os.PathLike, counts: Counter[str], total: int, what: str = "segments") -> None:
    """One warning line for `total` odd segments of `source` with per-kind `counts` (nothing when total is 0)."""
    if total:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        warn_once(f"{source}: {total} {what} kept as given: {kinds} (see docs/evaluate.md)")


def check_segments(annotations: Annotations, source: str | os.PathLike) -> Annotations:
    """Check every annotation's segment (and duration) → `annotations` unchanged.

    Reversed or non-finite segment, or a duration that is not a finite number ≥ 0 → InputError naming the file,
    video and entry; zero-length segments, negative starts and ends more than DURATION_SLACK_S past the duration →
    counted in one warning line. Applied by read_annotations to every format.
    """
    counts: Counter[str] = Counter()
    total = 0
    for video, entry in annotations.items():
        duration = entry.get("duration")
        if duration is not None and not (math.isfinite(duration) and duration >= 0):
            raise InputError(f"{source}: video {video!r}: duration {duration} is not a finite number ≥ 0")
        for a in entry["annotations"]:
            start, end = a["segment"]
            problem = segment_problem(start, end)
            if problem is not None:
                raise InputError(f"{source}: video {video!r}: {a['label']} {problem}")
            odd = segment_oddities(start, end, duration)
            counts.update(odd)
            total += bool(odd)
    warn_odd_segments(source, counts, total)
    return annotations


def _read_thumos_txt(path: Path, out: Annotations) -> None:
    m = _THUMOS_TXT.match(path.name)
    assert m is not None
    label, subset = m["label"], m["subset"]
    for video, start, end in _parse_segment_lines(path):
        entry = out.setdefault(video, {"subset": subset, "duration": None, "annotations": []})
        if entry["subset"] != subset:
            raise InputError(f"{path}: video {video} is also listed under subset {entry['subset']!r}")
        entry["annotations"].append({"label": label, "segment": [start, end]})


def _read_json_annotations(path: Path) -> Annotations:
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("database"), dict):
        data = data["database"]  # official ActivityNet layout
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object mapping video id → entry (or a 'database' of them)")
    out: Annotations = {}
    for video, entry in data.items():
        where = f"{path}: video {video!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("subset"), str):
            raise InputError(f"{where}: entry has no 'subset' string (not an annotation file?)")
        duration = entry.get("duration")
        if duration is not None and number_problem(duration) is not None:
            raise InputError(f"{where}: duration {number_problem(duration)}")
        anns = entry.get("annotations", [])
        if not isinstance(anns, list):
            raise InputError(f"{where}: 'annotations' is not a list")
        clean = []
        for i, a in enumerate(anns):
            seg = a.get("segment") if isinstance(a, dict) else None
            if (
                not isinstance(a, dict)
                or not isinstance(a.get("label"), str)
                or not isinstance(seg, list)
                or len(seg) != 2
            ):
                raise InputError(f"{where}: annotation {a!r} is not {{'label': str, 'segment': [start, end]}}")
            for end, x in zip(("start", "end"), seg, strict=True):
                if number_problem(x) is not None:
                    raise InputError(f"{where}: annotation {i} ({a['label']}): segment {end} {number_problem(x)}")
            if a["label"] == AMBIGUOUS_LABEL:  # some THUMOS14 JSONs list these; a filter (Ambiguous_test.txt), no class
                continue
            item = {"label": a["label"], "segment": [float(seg[0]), float(seg[1])]}
            for key, name in CHARACTERISTIC_FIELDS.items():  # a DETAD file's per-instance characteristics
                if key in a:
                    value = a[key]
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise InputError(f"{where}: annotation {a['label']} {seg}: {key!r} is not a number")
                    item[name] = float(value)
            clean.append(item)
        out[str(video)] = {
            "subset": entry["subset"],
            "duration": None if duration is None else float(duration),
            "annotations": clean,
        }
    return out


def read_ambiguous(path: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
    """THUMOS14 `Ambiguous_test.txt` (lines `video start end`) → {video: [(start_s, end_s), ...]} in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: ambiguous-segment file not found")
    out: dict[str, list[tuple[float, float]]] = {}
    for video, start, end in _parse_segment_lines(path):
        out.setdefault(video, []).append((start, end))
    return out


def class_names(annotations: Annotations) -> list[str]:
    """Sorted class names over all videos and subsets; class index = position in this list (method §7.2)."""
    return sorted({a["label"] for entry in annotations.values() for a in entry["annotations"]})


def check_class_list(annotations: Annotations, info: DatasetInfo, source: str | os.PathLike) -> None:
    """Warn (once) when the labels are not the dataset's fixed class list: a misspelt label would silently become an
    extra class. THUMOS14's 20 names are known; for ActivityNet only the count is, and the labels of the training
    subset missing from the test subset are named (where a typo would show)."""
    classes = class_names(annotations)
    if info.name == "thumos14":
        for label in [c for c in classes if c not in THUMOS14_CLASSES]:
            videos = sorted(v for v, e in annotations.items() if any(a["label"] == label for a in e["annotations"]))
            warn_once(
                f"{source}: label {label!r} ({len(videos)} video(s), e.g. {videos[0]}) is not one of THUMOS14's 20 "
                f"classes; it becomes a class of its own ({len(classes)} classes)"
            )
    elif len(classes) != info.num_classes:

        def labels_of(subset: str) -> set[str]:
            return {a["label"] for e in annotations.values() if e["subset"] == subset for a in e["annotations"]}

        odd = sorted(labels_of(info.train_subset) - labels_of(info.test_subset))
        hint = f"; in {info.train_subset} but not {info.test_subset}: {', '.join(map(repr, odd[:5]))}" if odd else ""
        warn_once(f"{source}: {len(classes)} classes, but {info.name} has {info.num_classes}{hint}")


def warn_unknown_subsets(
    annotations: Annotations, info: DatasetInfo, source: str | os.PathLike, also: Sequence[str] = ()
) -> None:
    """One warning line when videos have a subset the dataset does not know (`"TEST"`, `"valid"`): no split takes
    them, so they would drop out silently. Names the values with their video counts; `also` are extra known ones."""
    known = {*info.subsets, *also}
    counts = Counter(e["subset"] for e in annotations.values() if e["subset"] not in known)
    if counts:
        listed = ", ".join(f"{s!r} ({n})" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
        more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
        warn_once(
            f"{source}: {counts.total()} video(s) with a subset {info.name} does not have, not used: {listed}{more} "
            f"(its subsets: {', '.join(info.subsets)})"
        )


def id_candidates(video: str) -> list[str]:
    """The id itself, then its `v_`-prefixed and `v_`-stripped forms (ActivityNet: bare YouTube id vs file stem)."""
    out = [video, f"v_{video}"]
    if video.startswith("v_") and len(video) > 2:
        out.append(video[2:])
    return out


def ground_truth(annotations: Annotations, videos: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{video: [{"label", "segment": [s, e]}, ...]} for `videos` (ids as given; `v_`-prefix differences matched)."""
    out = {}
    for video in videos:
        key = next((k for k in id_candidates(video) if k in annotations), None)
        if key is None:
            raise InputError(f"video {video!r} is not in the annotations")
        out[video] = [{"label": a["label"], "segment": list(a["segment"])} for a in annotations[key]["annotations"]]
    return out


# --- splits and feature validation -------------------------------------------------------------------------------


@dataclass
class Split:
    """One split of a dataset, validated. Per-video lists are aligned with `videos` (sorted feature-file stems)."""

    data_name: str
    split: str  # "train" | "test"
    classes: list[str]  # sorted; class index = position
    videos: list[str]  # feature file stems (`<video>_rgb.npy`), sorted
    labels: np.ndarray  # [V, C] float32 multi-hot
    num_snippets: list[int]  # L per video
    rgb_paths: list[Path]
    flow_paths: list[Path]
    durations: list[float | None]  # seconds, from the annotation file (None for the THUMOS14 txt format)
    ground_truth: dict[str, list[dict[str, Any]]]  # keyed by the stems in `videos`
    ambiguous: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # THUMOS14 test only
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)
    annotation_file: Path | None = None
    ambiguous_file: Path | None = None
    # W-TALC layout only: video → float [L, 2048] (rgb ‖ flow), rows of the one JOINT file read into memory once
    # (rgb_paths / flow_paths then name that file for every video). Keyed by video, so subsets of the Split share it.
    features: dict[str, np.ndarray] | None = None

    # How each field follows `subset`: every field is listed in exactly one group, else `subset` refuses to run
    # (a new field added here without a group fails loudly instead of being silently misaligned).
    PER_VIDEO: ClassVar[tuple[str, ...]] = ("videos", "labels", "num_snippets", "rgb_paths", "flow_paths", "durations")
    BY_VIDEO: ClassVar[tuple[str, ...]] = ("ground_truth", "ambiguous", "features")  # dicts keyed by video (or None)
    WHOLE: ClassVar[tuple[str, ...]] = ("data_name", "split", "classes", "skipped", "annotation_file", "ambiguous_file")

    def __len__(self) -> int:
        return len(self.videos)

    def subset(self, keep: Sequence[int] | np.ndarray) -> Split:
        """This split restricted to videos `keep` (indices, in the given order): per-video lists and the labels'
        rows follow, per-video dicts keep the chosen videos' entries, the rest (classes, files, skips) is shared."""
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        if keep.size and not (0 <= keep.min() and keep.max() < len(self.videos)):
            raise IndexError(f"Split.subset: indices must lie in [0, {len(self.videos)})")
        videos = [self.videos[i] for i in keep]
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.PER_VIDEO:
                if len(value) != len(self.videos):
                    raise ValueError(f"Split.{f.name}: {len(value)} entries for {len(self.videos)} videos")
                values[f.name] = value[keep] if isinstance(value, np.ndarray) else [value[i] for i in keep]
            elif f.name in self.BY_VIDEO:
                values[f.name] = None if value is None else {v: value[v] for v in videos if v in value}
            elif f.name in self.WHOLE:
                values[f.name] = value
            else:
                raise TypeError(f"Split.subset: field {f.name!r} is in none of PER_VIDEO, BY_VIDEO, WHOLE")
        return type(self)(**values)

    def video_features(self, v: int) -> np.ndarray:
        """All snippet features of video `v` → float32 [L, 2048] (rgb ‖ flow): from the two .npy files, or the W-TALC
        row held in memory. (Training and testing read only the sampled rows; this is for whole-split copies.)"""
        if self.features is not None:
            return np.array(self.features[self.videos[v]], dtype=np.float32)  # a writable copy
        return np.concatenate([_mmap(self.rgb_paths[v]), _mmap(self.flow_paths[v])], axis=1, dtype=np.float32)

    def summary(self, skipped_file: str | os.PathLike | None = None, limit: int = 10) -> str:
        """A small readable table: videos kept, classes, snippets, skipped videos by reason, then the skipped videos
        by name with their reason (the first `limit`; the rest are counted). `skipped_file`, when given, is where the
        whole list is (see write_skipped): the summary says so."""
        rows = [
            ("dataset / split", f"{self.data_name} / {self.split}"),
            ("annotations", str(self.annotation_file)),
            ("videos", str(len(self.videos))),
            ("classes", str(len(self.classes))),
            ("snippets (total)", str(sum(self.num_snippets))),
        ]
        if self.split == "test" and self.data_name == "thumos14":
            n = sum(map(len, self.ambiguous.values()))
            rows.append(("ambiguous segments", f"{n} from {self.ambiguous_file}" if self.ambiguous_file else "OFF"))
        for reason, n in sorted(_skip_counts(self.skipped).items()):
            rows.append((f"skipped: {reason}", str(n)))
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        if self.skipped:
            lines.append(
                f"skipped videos (all {len(self.skipped)} in {skipped_file}):" if skipped_file else "skipped videos:"
            )
            lines += [f"  {video}  {reason}" for video, reason in self.skipped[:limit]]
            if len(self.skipped) > limit:
                where = f" in {skipped_file}" if skipped_file is not None else ""
                lines.append(f"  … {len(self.skipped) - limit} more{where}")
        return "\n".join(lines)

    def write_skipped(self, path: str | os.PathLike) -> None:
        """Write every skipped video as a `video<TAB>reason` line (atomically)."""
        atomic_text_write(path, "".join(f"{video}\t{reason}\n" for video, reason in self.skipped))


def _skip_counts(skipped: list[tuple[str, str]]) -> Counter[str]:
    """Skipped videos per reason kind (the text before the first ':': missing, bad, short, dropped)."""
    return Counter(reason.split(":", 1)[0] for _, reason in skipped)


def _dataset_root(info: DatasetInfo, data_path: Path) -> Path:
    """`<data_path>/<folder>` (method §7.1); `data_path` may also be that folder itself (it then holds features/)."""
    if not data_path.is_dir():
        raise InputError(f"{data_path}: data folder not found")
    if (data_path / info.folder).is_dir():
        return data_path / info.folder
    if data_path.name == info.folder or (data_path / "features").is_dir():
        return data_path
    raise InputError(
        f"{data_path}: no '{info.folder}/' folder here (expected {data_path / info.folder}/features/..., method §7.1)"
    )


def _rel(root: Path, relpath: str) -> Path:
    """A DATASETS path (relative to <data_path>, starting with the dataset folder) resolved against the root."""
    return root.joinpath(*Path(relpath).parts[1:])


def _find_annotation_source(info: DatasetInfo, root: Path) -> Path:
    for rel in info.annotation_files:
        p = _rel(root, rel)
        if p.is_file() or (p.is_dir() and _thumos_txt_files(p)):
            return p
    tried = ", ".join(str(_rel(root, r)) for r in info.annotation_files)
    raise InputError(f"{root}: no annotation file found for {info.name} (looked for {tried})")


def find_annotation_file(data_path: str | os.PathLike, data_name: str) -> Path:
    """The annotation source `load_split` uses under `data_path` (a .json file or a THUMOS14 txt folder)."""
    info = dataset_info(data_name)
    wtalc = find_wtalc_layout(data_path, data_name)
    if wtalc is not None:
        return wtalc[1]
    return _find_annotation_source(info, _dataset_root(info, Path(data_path)))


def _find_ambiguous(annotation_source: Path, root: Path) -> Path | None:
    """An official Ambiguous_test.txt near the annotations, else the project's shipped result/ambiguous.txt."""
    folders = [annotation_source] if annotation_source.is_dir() else [annotation_source.parent]
    folders += [root, root / "annotations", root / "official"]
    for d in folders:
        for p in (d / "Ambiguous_test.txt", d / "annotations_test" / "Ambiguous_test.txt"):
            if p.is_file():
                return p
    return SHIPPED_AMBIGUOUS if SHIPPED_AMBIGUOUS.is_file() else None


def _match_features(videos: list[str], names: set[str]) -> tuple[dict[str, str], list[str]]:
    """Annotation id → feature stem, matching `v_` prefixes both ways; exact names are claimed first.

    Returns (matched, missing). Two ids never share one stem (e.g. `abc` and `v_abc` with only `v_abc_rgb.npy`).
    """
    matched: dict[str, str] = {}
    claimed: set[str] = set()
    for video in videos:
        if f"{video}_rgb.npy" in names:
            matched[video] = video
            claimed.add(video)
    missing = []
    for video in videos:
        if video in matched:
            continue
        stem = next((s for s in id_candidates(video)[1:] if s not in claimed and f"{s}_rgb.npy" in names), None)
        if stem is None:
            missing.append(video)
        else:
            matched[video] = stem
            claimed.add(stem)
    return matched, missing


_CHUNK_BYTES = 8 << 20


def _all_finite(a: np.ndarray) -> bool:
    """NaN/Inf check of a memory-mapped [L, D] array, chunk by chunk (a small bool temporary, no full copy)."""
    rows = max(1, _CHUNK_BYTES // max(1, a.shape[1] * a.itemsize))
    return all(np.isfinite(a[i : i + rows]).all() for i in range(0, a.shape[0], rows))


def check_feature_file(path: Path) -> tuple[int, str | None]:
    """Open a feature .npy (memory-mapped) and check it is a finite float [L, 1024] array → (L, problem or None).

    The problem string is one line (`width 512, expected 1024`); the array is not kept.
    """
    try:
        a = np.load(path, mmap_mode="r")
    except Exception as e:  # garbage, truncated, pickled, empty: numpy raises several types
        msg = " ".join(str(e).split())[:120]
        return 0, f"not a readable .npy file ({type(e).__name__}: {msg})"
    if not isinstance(a, np.ndarray):
        return 0, "not a .npy array file (an .npz archive?)"
    if a.ndim != 2:
        return 0, f"{a.ndim}-D array of shape {tuple(a.shape)}, expected [L, {FEATURE_DIM}]"
    if a.shape[1] != FEATURE_DIM:
        return a.shape[0], f"width {a.shape[1]}, expected {FEATURE_DIM}"
    if not np.issubdtype(a.dtype, np.floating):
        return a.shape[0], f"dtype {a.dtype}, expected float32"
    if a.shape[0] >= MIN_SNIPPETS and not _all_finite(a):  # short videos are skipped anyway
        return a.shape[0], "contains NaN or Inf"
    return a.shape[0], None


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise InputError(f"split {split!r}: expected 'train' or 'test'")


def split_videos(annotations: Annotations, data_name: str, split: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Annotation ids of a split (method §7.2 subset, minus the dropped test videos), sorted → (ids, dropped)."""
    info = dataset_info(data_name)
    _check_split(split)
    subset = info.train_subset if split == "train" else info.test_subset
    dropped = set(info.dropped_test) if split == "test" else set()
    ids = sorted(v for v, e in annotations.items() if e["subset"] == subset)
    kept = [v for v in ids if v not in dropped]
    return kept, [(v, "dropped: annotation errors (method §7.2)") for v in ids if v in dropped]


def load_split(
    data_path: str | os.PathLike,
    data_name: str,
    split: str,
    *,
    skip_bad: bool = False,
    annotation_file: str | os.PathLike | None = None,
    progress: bool = True,
    ambiguous: bool = True,
    fps: float = FPS,
    rate: int = RATE,
) -> Split:
    """Load and validate one split (method §7): annotations, subset, drops, feature files, the ≤10-snippet skip.

    Every feature file is checked once (missing, unreadable, ndim, width 1024, float dtype, rgb/flow length,
    NaN/Inf): a bad one raises one InputError line naming the file, or with `skip_bad` is skipped and listed in
    `Split.skipped`. `annotation_file` overrides the dataset's default (a .json file or a THUMOS14 txt folder).
    THUMOS14 test: the Ambiguous segments (method §9.7) are required (InputError if no file is found) unless
    `ambiguous=False`, which leaves `Split.ambiguous` empty (no filter). Snippet counts far from what the annotated
    durations allow at `fps` / `rate` → one warning line (`warn_snippet_counts`).
    """
    info = dataset_info(data_name)
    _check_split(split)  # before any file is read
    wtalc = find_wtalc_layout(data_path, data_name)  # <data_path>/<Name>-I3D-JOINTFeatures.npy: the W-TALC layout
    if wtalc is not None:
        return load_wtalc_split(
            *wtalc, data_name, split, skip_bad=skip_bad, annotation_file=annotation_file, progress=progress,
            ambiguous=ambiguous, fps=fps, rate=rate,
        )  # fmt: skip
    root = _dataset_root(info, Path(data_path))
    source = Path(annotation_file) if annotation_file is not None else _find_annotation_source(info, root)
    annotations = read_annotations(source)
    classes = class_names(annotations)
    if not classes:
        raise InputError(f"{source}: no labelled action instances")
    check_class_list(annotations, info, source)
    warn_unknown_subsets(annotations, info, source)
    ids, skipped = split_videos(annotations, data_name, split)
    for v in ids:  # feature files are named after the ids: an id that is a path is refused, not "not found"
        safe_file_name(v, source)
    if not ids:
        subsets = sorted({e["subset"] for e in annotations.values()})
        raise InputError(f"{source}: no {split} videos (subsets present: {', '.join(subsets)})")

    feat_dir = _rel(root, info.feature_dir(split))
    if not feat_dir.is_dir():
        raise InputError(
            f"{feat_dir}: feature folder not found (expected <video>_rgb.npy / <video>_flow.npy, method §7.1)"
        )
    names = set(os.listdir(feat_dir))
    matched, missing = _match_features(ids, names)
    if missing and not skip_bad:
        tried = ", ".join(f"{c}_rgb.npy" for c in id_candidates(missing[0])[1:])
        raise InputError(
            f"{feat_dir / (missing[0] + '_rgb.npy')}: feature file not found (also tried {tried}; "
            f"{len(missing)} of {len(ids)} {split} videos have none)"
        )
    skipped += [(v, "missing: feature file not found") for v in missing]

    kept: list[tuple[str, str, int]] = []  # (stem, annotation id, L)
    order = sorted(matched, key=matched.get)
    for video in Progress(order, desc=f"check {split} features", enabled=progress):
        stem = matched[video]
        rgb, flow = feat_dir / f"{stem}_rgb.npy", feat_dir / f"{stem}_flow.npy"
        problem = None
        if not flow.is_file():
            problem = f"{flow}: feature file not found"
            kind = "missing"
        else:
            n_rgb, p_rgb = check_feature_file(rgb)
            n_flow, p_flow = check_feature_file(flow) if p_rgb is None else (0, None)
            kind = "bad"
            if p_rgb is not None:
                problem = f"{rgb}: {p_rgb}"
            elif p_flow is not None:
                problem = f"{flow}: {p_flow}"
            elif n_rgb != n_flow:
                problem = f"{flow}: {n_flow} snippets but {rgb.name} has {n_rgb}"
        if problem is not None:
            if not skip_bad:
                raise InputError(problem)
            skipped.append((stem, f"{kind}: {problem}"))
        elif n_rgb < MIN_SNIPPETS:
            skipped.append((stem, f"short: {n_rgb} snippets (<= 10, method §7.2)"))
        else:
            kept.append((stem, video, n_rgb))

    if not kept:
        reasons = _skip_counts(skipped)
        raise InputError(f"{feat_dir}: no videos left after skipping {sum(reasons.values())} ({dict(reasons)})")
    stems = [s for s, _, _ in kept]
    return _assemble_split(
        info, split, classes, annotations, kept, skipped, source,
        rgb_paths=[feat_dir / f"{s}_rgb.npy" for s in stems],
        flow_paths=[feat_dir / f"{s}_flow.npy" for s in stems],
        ambiguous_near=(source, root) if ambiguous else None, fps=fps, rate=rate,
    )  # fmt: skip


def _assemble_split(
    info: DatasetInfo,
    split: str,
    classes: list[str],
    annotations: Annotations,
    kept: list[tuple[str, str, int]],
    skipped: list[tuple[str, str]],
    source: Path,
    *,
    rgb_paths: list[Path],
    flow_paths: list[Path],
    ambiguous_near: tuple[Path, Path] | None,
    features: dict[str, np.ndarray] | None = None,
    fps: float = FPS,
    rate: int = RATE,
) -> Split:
    """The Split of the kept videos `kept` [(stem, annotation id, L)], in that order, for either layout: multi-hot
    labels, ground truth and durations from `annotations`; for the THUMOS14 test split the Ambiguous segments found
    by `_find_ambiguous(*ambiguous_near)`, which must exist (never switch method §9.7's filter off silently), or none
    at all when `ambiguous_near` is None (--no_ambiguous)."""
    stems = [s for s, _, _ in kept]
    index = {c: i for i, c in enumerate(classes)}
    labels = np.zeros((len(kept), len(classes)), np.float32)
    for row, (_, video, _) in enumerate(kept):
        labels[row, [index[a["label"]] for a in annotations[video]["annotations"]]] = 1.0
    gt = ground_truth(annotations, [v for _, v, _ in kept])
    result = Split(
        data_name=info.name,
        split=split,
        classes=classes,
        videos=stems,
        labels=labels,
        num_snippets=[n for _, _, n in kept],
        rgb_paths=rgb_paths,
        flow_paths=flow_paths,
        durations=[annotations[v]["duration"] for _, v, _ in kept],
        ground_truth={s: gt[v] for s, v, _ in kept},
        skipped=skipped,
        annotation_file=source,
        features=features,
    )
    warn_snippet_counts(result, fps, rate)
    if info.name == "thumos14" and split == "test" and ambiguous_near is not None:
        amb_file = _find_ambiguous(*ambiguous_near)
        if amb_file is None:  # never switch the method §9.7 filter off silently
            raise InputError(
                f"{ambiguous_near[1]}: no Ambiguous_test.txt (looked next to {ambiguous_near[0]}, in "
                f"{ambiguous_near[1]} and for {SHIPPED_AMBIGUOUS}); the THUMOS14 protocol filters predictions with "
                "it (method §9.7): restore the file, or pass --no_ambiguous to evaluate without the filter"
            )
        amb = read_ambiguous(amb_file)
        result.ambiguous = {s: amb[v] for s, v, _ in kept if v in amb}
        result.ambiguous_file = amb_file
    return result


def warn_snippet_counts(split: Split, fps: float = FPS, rate: int = RATE) -> None:
    """One warning line when videos have far more or fewer snippets than their annotated duration allows: L should
    be about duration · fps / rate (a snippet is `rate` frames at `fps`, method §1). Far = more than SNIPPET_SLACK
    snippets and SNIPPET_SLACK_FRACTION of that apart. Such features belong to another video or another frame rate,
    and every predicted time of the video would be off (a 13.9 s video with 100,000 snippets got predictions at
    64,000 s). Counts the videos and names the first few; videos without a duration are not checked."""
    known = [i for i, d in enumerate(split.durations) if d is not None]
    if not known:
        return
    L = np.asarray(split.num_snippets, dtype=np.float64)[known]
    duration = np.asarray([split.durations[i] for i in known], dtype=np.float64)
    expected = duration * fps / rate
    off = np.flatnonzero(np.abs(L - expected) > np.maximum(SNIPPET_SLACK, SNIPPET_SLACK_FRACTION * expected))
    if off.size:
        shown = ", ".join(
            f"{split.videos[known[i]]} ({L[i]:.0f} for {duration[i]:g} s, expected ~{expected[i]:.0f})" for i in off[:3]
        )
        more = f" and {off.size - 3} more" if off.size > 3 else ""
        warn_once(
            f"{split.annotation_file}: {off.size} {split.split} video(s) whose feature files hold far more or fewer "
            f"snippets than their annotated duration allows at {rate} frames / {fps:g} fps: {shown}{more}; their "
            "predicted times will be wrong (features of another video, or another --fps / --rate?)"
        )


# --- the W-TALC layout (the I3D features most weakly-supervised repositories share) ------------------------------
# Reading its files (the restricted unpickler, the annotation folder, the JOINT features file) is wtalc.py's job;
# here the layout is found beside a dataset and turned into the same Split as the authors' layout.


def find_wtalc_layout(data_path: str | os.PathLike, data_name: str) -> tuple[Path, Path] | None:
    """(features file, annotation folder) when `data_path` holds `<Name>-I3D-JOINTFeatures.npy`, else None.

    The file named for `data_name` is taken (Thumos14reduced / ActivityNet1.2 ...); a single file of an unknown name
    too (its annotations then have to fit the dataset). Another dataset's file, or no `<Name>-Annotations/` folder
    beside it → InputError.
    """
    data_path = Path(data_path)
    files = sorted(data_path.glob(f"*{WTALC_FEATURES}")) if data_path.is_dir() else []
    if not files:
        return None
    stem = lambda p: p.name[: -len(WTALC_FEATURES)]  # noqa: E731
    mine = [p for p in files if WTALC_NAMES.get(stem(p)) == data_name]
    if len(mine) > 1:
        listed = ", ".join(p.name for p in mine)
        raise InputError(f"{data_path}: several W-TALC feature files for {data_name} ({listed}); keep one")
    if mine:
        features = mine[0]
    elif len(files) == 1 and stem(files[0]) not in WTALC_NAMES:
        features = files[0]
    elif (data_path / dataset_info(data_name).folder).is_dir() or (data_path / "features").is_dir():
        return None  # another dataset's W-TALC file beside this dataset in the authors' layout
    else:
        listed = ", ".join(p.name for p in files)
        expected = " or ".join(f"{n}{WTALC_FEATURES}" for n, d in WTALC_NAMES.items() if d == data_name)
        raise InputError(f"{data_path}: holds {listed} (another dataset's W-TALC features), not {expected}")
    folder = data_path / f"{stem(features)}-Annotations"
    if not folder.is_dir():
        raise InputError(f"{folder}: annotation folder not found (the W-TALC layout keeps it beside {features.name})")
    return features, folder


def check_joint_row(x: Any) -> tuple[int, str | None]:
    """One video of a JOINT file: a finite float [T, 2048] array? → (T, problem or None) (NaN only checked on
    videos that are not skipped for length)."""
    if not isinstance(x, np.ndarray):
        return 0, f"a {type(x).__name__}, expected a float array [T, {2 * FEATURE_DIM}]"
    if x.ndim != 2:
        return 0, f"{x.ndim}-D array of shape {tuple(x.shape)}, expected [T, {2 * FEATURE_DIM}]"
    if x.shape[1] != 2 * FEATURE_DIM:
        return x.shape[0], f"width {x.shape[1]}, expected {2 * FEATURE_DIM} (rgb ‖ flow)"
    if not np.issubdtype(x.dtype, np.floating):
        return x.shape[0], f"dtype {x.dtype}, expected float32"
    if x.shape[0] >= MIN_SNIPPETS and not _all_finite(x):
        return x.shape[0], "contains NaN or Inf"
    return x.shape[0], None


def load_wtalc_split(
    features_file: str | os.PathLike,
    folder: str | os.PathLike,
    data_name: str,
    split: str,
    *,
    skip_bad: bool = False,
    annotation_file: str | os.PathLike | None = None,
    progress: bool = True,
    ambiguous: bool = True,
    fps: float = FPS,
    rate: int = RATE,
) -> Split:
    """`load_split` for the W-TALC layout: the same Split, with the features in memory (`Split.features`).

    Names from videoname.npy (row order of the features file), classes = sorted classlist.npy, subsets, segments
    and labels from the folder (or from `annotation_file`, which then also gives the classes), method §7.2's filters,
    the THUMOS14 Ambiguous_test.txt of the folder. Every kept video's row is checked once ([T, 2048] float, finite).
    """
    info = dataset_info(data_name)
    _check_split(split)
    features_file, folder = Path(features_file), Path(folder)
    names, classlist = wtalc_names_and_classes(folder)
    if len(classlist) != info.num_classes:
        raise InputError(
            f"{folder / 'classlist.npy'}: {len(classlist)} classes, but {info.name} has {info.num_classes} "
            "(an annotation folder of another dataset?)"
        )
    source = Path(annotation_file) if annotation_file is not None else folder
    annotations = read_annotations(source)  # the folder too goes through read_annotations, as every format does
    classes = sorted(classlist) if annotation_file is None else class_names(annotations)
    if annotation_file is not None:
        check_class_list(annotations, info, source)
    warn_unknown_subsets(annotations, info, source)
    ids, skipped = split_videos(annotations, info.name, split)
    if not ids:
        subsets = sorted({e["subset"] for e in annotations.values()})
        raise InputError(f"{source}: no {split} videos (subsets present: {', '.join(subsets)})")
    features = read_wtalc_features(features_file, progress=progress)
    if len(features) != len(names):
        raise InputError(f"{features_file}: {len(features)} videos, but {folder / 'videoname.npy'} lists {len(names)}")

    row = {v: i for i, v in enumerate(names)}
    kept: list[tuple[str, int, int]] = []  # (annotation id, row, L)
    for video in Progress(ids, desc=f"check {split} features", enabled=progress):
        i = next((row[k] for k in id_candidates(video) if k in row), None)
        if i is None:
            kind, problem = "missing", f"{folder / 'videoname.npy'}: video {video} is not listed (no features)"
        else:
            L, p = check_joint_row(features[i])
            kind, problem = "bad", None if p is None else f"{features_file}: video {names[i]} (row {i}): {p}"
        if problem is not None:
            if not skip_bad:
                raise InputError(problem)
            skipped.append((video, f"{kind}: {problem}"))
        elif L < MIN_SNIPPETS:
            skipped.append((names[i], f"short: {L} snippets (<= 10, method §7.2)"))
        else:
            kept.append((video, i, L))
    if not kept:
        reasons = _skip_counts(skipped)
        raise InputError(f"{features_file}: no videos left after skipping {sum(reasons.values())} ({dict(reasons)})")
    kept.sort(key=lambda k: names[k[1]])  # Split.videos are sorted, as the feature-file stems of the other layout
    return _assemble_split(
        info, split, classes, annotations, [(names[i], video, L) for video, i, L in kept], skipped, source,
        rgb_paths=[features_file] * len(kept),
        flow_paths=[features_file] * len(kept),
        ambiguous_near=(folder, features_file.parent) if ambiguous else None,
        features={names[i]: features[i] for _, i, _ in kept}, fps=fps, rate=rate,
    )  # fmt: skip


# --- snippet sampling (method §7.3) --------------------------------------------------------------------------------


def sample_train_indices(L: int, S: int, rng: np.random.Generator) -> np.ndarray:
    """Training sampling → int64 [S]: segment i spans [floor(i·L/S), floor((i+1)·L/S)); one uniform random
    snippet from it, or floor(i·L/S) itself when the span is empty (L < S repeats snippets)."""
    i = np.arange(S + 1, dtype=np.int64)
    b = i * L // S  # == floor(i·L/S) exactly (integer arithmetic)
    lo, hi = b[:-1], b[1:]
    out = lo.copy()
    draw = hi > lo
    if draw.any():
        out[draw] = rng.integers(lo[draw], hi[draw])
    return out


def sample_test_indices(L: int, S: int) -> np.ndarray:
    """Test sampling → int64 [min(L, S)]: all snippets in order when L <= S, else floor(i·L/S), i = 0..S-1."""
    if L <= S:
        return np.arange(L, dtype=np.int64)
    return sample_uniform_indices(L, S)


def sample_uniform_indices(L: int, S: int) -> np.ndarray:
    """Fixed-length deterministic sampling → int64 [S]: floor(i·L/S), i = 0..S-1 (repeats snippets when L < S)."""
    return np.arange(S, dtype=np.int64) * L // S


def _mmap(path: Path) -> np.ndarray:
    """A validated feature file, memory-mapped; a plain ndarray view (memmap's subclass hooks slow indexing)."""
    return np.asarray(np.load(path, mmap_mode="r"))


class FeatureDataset(torch.utils.data.Dataset):
    """Snippet features of a Split → `(x [S or L, 2048] float32 (rgb ‖ flow), label [C] float32, video, L)`.

    sampling: None → the mode's method §7.3 rule (train: one random snippet per segment; test: all L snippets when
    L <= S, else floor(i·L/S)); "uniform" → always S snippets floor(i·L/S); "all" → all L snippets.

    Randomness (train sampling): `ds[(i, seed)]` draws from `numpy.random.default_rng(seed)`, a pure function of
    (i, seed), so identical in any DataLoader worker and after a resume as long as the trainer's own seeded
    generator (whose state it checkpoints) produces the seeds; `ds[i]` takes the seed from torch's global RNG.

    Memory: by default each item memory-maps the two .npy files and copies only the sampled rows. With
    `in_memory=True` all features are read once into one float32 [ΣL, 2048] array (one copy; DataLoader workers
    forked afterwards share it). A W-TALC Split holds its features in memory (`Split.features`): items copy the
    sampled rows from it and `in_memory` changes nothing.
    """

    def __init__(
        self, split: Split, num_seg: int, mode: str, *, sampling: str | None = None, in_memory: bool = False
    ) -> None:
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if sampling not in (None, "all", "uniform"):
            raise ValueError(f"sampling must be None, 'all' or 'uniform', got {sampling!r}")
        if num_seg < 1:
            raise ValueError(f"num_seg must be >= 1, got {num_seg}")
        self.split, self.num_seg, self.mode = split, num_seg, mode
        self.sampling = sampling or ("random" if mode == "train" else "test")
        self._labels = torch.from_numpy(split.labels)  # [V, C]; items return copies
        self._cache: np.ndarray | None = None
        self._offsets = np.concatenate([[0], np.cumsum(split.num_snippets, dtype=np.int64)])
        if in_memory and split.features is None:  # (W-TALC features are in memory already)
            self._cache = np.empty((int(self._offsets[-1]), 2 * FEATURE_DIM), np.float32)
            for v in Progress(range(len(split)), desc="load features"):
                self._cache[self._offsets[v] : self._offsets[v + 1]] = split.video_features(v)

    def __len__(self) -> int:
        return len(self.split)

    def indices(self, v: int, seed: int | None = None) -> np.ndarray:
        """The snippet indices drawn for video `v` (int64 [S] or [L])."""
        L, S = self.split.num_snippets[v], self.num_seg
        if self.sampling == "random":
            if seed is None:
                seed = int(torch.randint(0, 2**62, ()).item())
            return sample_train_indices(L, S, np.random.default_rng(seed))
        if self.sampling == "test":
            return sample_test_indices(L, S)
        if self.sampling == "uniform":
            return sample_uniform_indices(L, S)
        return np.arange(L, dtype=np.int64)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str, int]:
        v, seed = (int(item[0]), int(item[1])) if isinstance(item, tuple | list) else (int(item), None)
        idx = self.indices(v, seed)
        if self._cache is not None:
            x = self._cache[self._offsets[v] + idx]
        elif self.split.features is not None:  # W-TALC layout: sampled rows of the in-memory [L, 2048] array
            x = np.ascontiguousarray(self.split.features[self.split.videos[v]][idx], dtype=np.float32)
        else:
            x = np.empty((len(idx), 2 * FEATURE_DIM), np.float32)
            x[:, :FEATURE_DIM] = _mmap(self.split.rgb_paths[v])[idx]
            x[:, FEATURE_DIM:] = _mmap(self.split.flow_paths[v])[idx]
        return torch.from_numpy(x), self._labels[v].clone(), self.split.videos[v], self.split.num_snippets[v]


if __name__ == "__main__":
    from video import frames_cli

    raise SystemExit(frames_cli())

"""Write small datasets in the W-TALC layout, byte-for-byte the way the public files were made (test helper).

The public `<Name>-Annotations/*.npy` object files are Python 2 numpy pickles (protocol 2, `numpy.core.multiarray`
globals, array data and strings as Python 2 `str` = SHORT_BINSTRING / BINSTRING); `Py2Pickler` reproduces that
from Python 3, so the tests read the same opcodes as the real files. `style="numpy"` writes what `np.save` makes
today (protocol 3), `style="protocol5"` a protocol-5 pickle (numpy's `_frombuffer` path).
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np

import dataset as D
import wtalc as W


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: bytes and str as Python 2 `str`, numpy globals under `numpy.core`."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if id(obj) in self.memo:  # (one-character bytes are shared objects)
            self.write(self.get(self.memo[id(obj)][0]))
            return
        n = len(obj)
        self.write(
            pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj
        )
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin1"))

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str
    dispatch[type] = save_global
    dispatch[type(np.ndarray.__reduce__)] = save_global  # builtin functions (_reconstruct)


def object_array(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def save_object_npy(path: Path, array: np.ndarray, style: str = "py2") -> None:
    """An object array as a .npy file: header + pickle in the given style."""
    if style == "numpy":
        np.save(path, array, allow_pickle=True)
        return
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": array.shape})
        if style == "py2":
            Py2Pickler(f, protocol=2).dump(array)
        elif style == "protocol5":
            pickle.dump(array, f, protocol=5)
        else:
            raise ValueError(style)


def write_wtalc(
    folder: Path,
    name: str,
    videos: dict[str, dict[str, Any]],
    classlist: list[str],
    *,
    ambiguous: Path | None = None,
    style: str = "py2",
) -> Path:
    """`<folder>/<name>-I3D-JOINTFeatures.npy` + `<folder>/<name>-Annotations/` → folder (the --data_path).

    videos: {video: {"subset", "features" [T, 2048], "labels": [str], "segments": [[s, e]], "duration"}}, in the
    order the files list them (row i of the features is video i).
    """
    ann = folder / f"{name}-Annotations"
    ann.mkdir(parents=True, exist_ok=True)
    names = list(videos)
    np.save(ann / "videoname.npy", np.array([v.encode() for v in names]))
    np.save(ann / "subset.npy", np.array([videos[v]["subset"].encode() for v in names]))
    np.save(ann / "classlist.npy", np.array([c.encode() for c in classlist]))
    np.save(ann / "duration.npy", np.array([[float(videos[v]["duration"])] for v in names]))
    save_object_npy(ann / "labels.npy", object_array([list(videos[v]["labels"]) for v in names]), style)
    segments = [[[float(s), float(e)] for s, e in videos[v]["segments"]] for v in names]
    save_object_npy(ann / "segments.npy", object_array(segments), style)
    labels_all = [sorted(set(videos[v]["labels"])) for v in names]
    save_object_npy(ann / "labels_all.npy", object_array(labels_all), style)
    if ambiguous is not None:
        shutil.copy(ambiguous, ann / "Ambiguous_test.txt")
    features = object_array([videos[v]["features"] for v in names])
    save_object_npy(folder / f"{name}{W.WTALC_FEATURES}", features, style)
    return folder


def wtalc_from_authors(data_path: Path, out: Path, *, style: str = "py2") -> Path:
    """The THUMOS14 dataset at `data_path` (method §7.1 layout, e.g. demo.make_demo's) rewritten in the W-TALC layout
    → `out` (holds Thumos14reduced-*). Same features (rgb ‖ flow), labels, segments; videos in reverse name order,
    so a reader that forgot to sort would differ."""
    root = data_path / "thumos14"
    db = json.loads((root / "annotations.json").read_text())
    videos = {}
    for v in sorted(db, reverse=True):
        e = db[v]
        feat_dir = root / "features" / e["subset"]
        if not (feat_dir / f"{v}_rgb.npy").is_file():
            continue
        rgb, flow = np.load(feat_dir / f"{v}_rgb.npy"), np.load(feat_dir / f"{v}_flow.npy")
        videos[v] = {
            "subset": {"val": "validation", "test": "test"}[e["subset"]],
            "features": np.concatenate([rgb, flow], axis=1),
            "labels": [a["label"] for a in e["annotations"]],
            "segments": [a["segment"] for a in e["annotations"]],
            "duration": e["duration"],
        }
    return write_wtalc(
        out, "Thumos14reduced", videos, D.THUMOS14_CLASSES, ambiguous=root / "Ambiguous_test.txt", style=style
    )

"""The W-TALC feature layout's files: the I3D features most weakly-supervised repositories share (W-TALC, 3C-Net,
CO2-Net, DELU, DDG-Net, ...), and the restricted unpickler that reads them.

    <data_path>/<Name>-I3D-JOINTFeatures.npy   object array [N]: float32 [T, 2048] per video (rgb ‖ flow)
    <data_path>/<Name>-Annotations/            videoname, subset, classlist, labels, segments, duration (.npy);
                                               THUMOS14 also Ambiguous_test.txt

    names, classlist, annotations = read_wtalc_folder("Thumos14reduced-Annotations")   # flat annotation form
    features = read_wtalc_features("Thumos14reduced-I3D-JOINTFeatures.npy")            # [N] of [T, 2048]

Names: Thumos14reduced, ActivityNet1.2. Row i of the features file is video videoname[i]. The object .npy files
are pickles: they are read by a restricted unpickler that can build only numpy arrays, dtypes, numbers, strings
and lists, never by np.load(allow_pickle=True), which runs whatever a downloaded pickle asks for. dataset.py finds
the layout beside a dataset and builds its Splits (`dataset.load_wtalc_split`).
"""

from __future__ import annotations

import os
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from utils import (
    InputError,
    Progress,
    is_finite_number,
    safe_file_name,
)

# The flat annotation form of dataset.read_annotations:
#   {video_id: {"subset": str, "duration": float | None, "annotations": [{"label": str, "segment": [s, e]}]}}
Annotations = dict[str, dict[str, Any]]

WTALC_FEATURES = "-I3D-JOINTFeatures.npy"  # <Name> + this
WTALC_NAMES: dict[str, str] = {  # <Name> → data_name (another <Name> is accepted when it is the only features file)
    "Thumos14reduced": "thumos14",
    "Thumos14": "thumos14",
    "ActivityNet1.2": "activitynet1.2",
    "ActivityNet1.3": "activitynet1.3",
}
WTALC_ANNOTATION_FILES = ("videoname", "subset", "classlist", "labels", "segments", "duration")


class _Refused(pickle.UnpicklingError):
    """The pickle asked for something outside the allow-list; it was neither imported nor called."""


def _ndarray_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy.core.multiarray._reconstruct: an empty ndarray that the pickle's BUILD fills (ndarray.__setstate__)."""
    if subtype is not np.ndarray:
        raise _Refused(f"_reconstruct of {subtype!r}")
    return np.ndarray(shape, np.dtype(dtype))


def _ndarray_frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """numpy.core.numeric._frombuffer (protocol-5 pickles of contiguous arrays)."""
    return np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape, order=order)


def _numpy_scalar(dtype: Any, data: Any) -> Any:
    """numpy.core.multiarray.scalar for plain (non-object) dtypes: a numpy number from its bytes."""
    dtype = np.dtype(dtype)
    if dtype.hasobject or not isinstance(data, bytes):
        raise _Refused(f"numpy scalar of dtype {dtype}")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    """_codecs.encode as protocol-2 pickles written by Python 3 spell a bytes object: encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,  # only as _reconstruct's subtype argument in numpy's own pickles
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _ndarray_reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _numpy_scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _ndarray_frombuffer for core in ("core", "_core")},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dtypes, numbers, bytes/str, lists (and the containers pickle builds by itself);
    any other global (os.system, builtins.eval, a class's __reduce__ target, ...) is refused before it is imported."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _PICKLE_GLOBALS.get((module, name))
        if allowed is None:
            raise _Refused(f"{module}.{name}")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


class _ReadProgress:
    """A binary file whose reads advance a progress display (bytes): unpickling a multi-GB file shows progress."""

    def __init__(self, f: Any, bar: Progress) -> None:
        self._f, self._bar = f, bar

    def read(self, n: int = -1) -> bytes:
        b = self._f.read(n)
        self._bar.update(len(b))
        return b

    def readline(self) -> bytes:
        b = self._f.readline()
        self._bar.update(len(b))
        return b

    def readinto(self, buf: Any) -> int:
        n = self._f.readinto(buf)
        self._bar.update(n)
        return n


def read_npy(path: str | os.PathLike, *, progress: bool = False) -> np.ndarray:
    """Any .npy file → array; object arrays (pickles) through the restricted unpickler, never `allow_pickle=True`.

    encoding="bytes": Python 2 pickles (the W-TALC files) give their str as bytes, which numpy's array state takes
    without a copy, so reading an N-byte features file peaks at about N bytes (latin1 would hold a second copy).
    Refused, truncated or malformed → one InputError line naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version} (1.0 and 2.0 are read)")
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)  # plain numbers or strings: no pickle involved
            size = os.fstat(f.fileno()).st_size
            with Progress(total=size, unit="B", unit_scale=True, desc=f"read {path.name}", enabled=progress) as bar:
                array = _RestrictedUnpickler(_ReadProgress(f, bar), encoding="bytes").load()
    except _Refused as e:
        raise InputError(
            f"{path}: refused to unpickle {e}: only numpy arrays, numbers, strings and lists are allowed "
            "(the file may be malicious; nothing in it was run)"
        ) from None
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as e:  # truncated, garbage, wrong header: pickle/numpy raise many types
        msg = " ".join(str(e).split())[:120]
        raise InputError(f"{path}: not a readable .npy file ({type(e).__name__}: {msg})") from None
    if not isinstance(array, np.ndarray) or array.shape != shape:
        got = f"shape {array.shape}" if isinstance(array, np.ndarray) else f"a {type(array).__name__}"
        raise InputError(f"{path}: the pickle holds {got}, but the .npy header says an array of shape {shape}")
    return array


def _wtalc_text(x: Any, path: Path, what: str) -> str:
    """A name or label from a W-TALC file (Python 2 str → bytes, or str) → str."""
    if isinstance(x, str):
        return str(x)
    if isinstance(x, bytes):
        try:
            return x.decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise InputError(f"{path}: {what} {x!r} is not a string")


def _wtalc_list(x: Any, path: Path, video: str) -> list[Any]:
    if not isinstance(x, list | tuple | np.ndarray):
        raise InputError(f"{path}: video {video}: expected a list per video, got {type(x).__name__}")
    return list(x)


def is_wtalc_annotations(folder: str | os.PathLike) -> bool:
    """Is `folder` a W-TALC `<Name>-Annotations/` folder (it holds videoname.npy)?"""
    return (Path(folder) / "videoname.npy").is_file()


def _wtalc_files(folder: Path) -> dict[str, Path]:
    """{name: path} of the annotation folder's .npy files; a missing one → InputError."""
    files = {k: folder / f"{k}.npy" for k in WTALC_ANNOTATION_FILES}
    for p in files.values():
        if not p.is_file():
            listed = ", ".join(f"{k}.npy" for k in WTALC_ANNOTATION_FILES)
            raise InputError(f"{p}: file not found (a W-TALC annotation folder holds {listed})")
    return files


def _wtalc_strings(path: Path, what: str) -> list[str]:
    return [_wtalc_text(x, path, what) for x in read_npy(path).reshape(-1)]


def wtalc_names_and_classes(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """A W-TALC annotation folder → (video names in features-row order (videoname.npy), classlist.npy)."""
    files = _wtalc_files(Path(folder))
    names = _wtalc_strings(files["videoname"], "video name")
    for name in names:  # they become file names (--save_vis pictures): none may leave a folder
        safe_file_name(name, files["videoname"])
    if len(set(names)) != len(names):
        dup = next(v for v, n in Counter(names).items() if n > 1)
        raise InputError(f"{files['videoname']}: video {dup} is listed twice")
    return names, _wtalc_strings(files["classlist"], "class")


def read_wtalc_folder(folder: str | os.PathLike) -> tuple[list[str], list[str], Annotations]:
    """A W-TALC `<Name>-Annotations/` folder → (video names in features-row order, classlist, annotations).

    Annotations are the flat form of `read_annotations`; segments pair with labels per video (labels_all.npy is not
    needed). THUMOS14's training subset, `validation` here, is renamed `val` as in annotations.json and the official
    files, so one protocol table (DATASETS) serves every format. Inconsistent files → one InputError line.
    """
    folder = Path(folder)
    files = _wtalc_files(folder)
    names, classlist = wtalc_names_and_classes(folder)
    subsets = _wtalc_strings(files["subset"], "subset")
    labels, segments = read_npy(files["labels"]), read_npy(files["segments"])
    duration = read_npy(files["duration"])
    if not np.issubdtype(duration.dtype, np.number):
        raise InputError(f"{files['duration']}: dtype {duration.dtype}, expected numbers (seconds)")
    duration = duration.reshape(-1)  # THUMOS14's is [N, 1]
    for key, values in (("subset", subsets), ("labels", labels), ("segments", segments), ("duration", duration)):
        if len(values) != len(names):
            raise InputError(f"{files[key]}: {len(values)} entries, but videoname.npy lists {len(names)} videos")
    known = set(classlist)
    rename = {"validation": "val"} if "test" in subsets and "training" not in subsets else {}  # THUMOS14
    out: Annotations = {}
    for i, video in enumerate(names):
        labs = [_wtalc_text(x, files["labels"], "label") for x in _wtalc_list(labels[i], files["labels"], video)]
        segs = _wtalc_list(segments[i], files["segments"], video)
        if len(labs) != len(segs):
            raise InputError(
                f"{files['labels']}: video {video}: {len(labs)} labels, but segments.npy has {len(segs)} segments"
            )
        anns = []
        for label, seg in zip(labs, segs, strict=True):
            if label not in known:
                raise InputError(f"{files['labels']}: video {video}: label {label!r} is not in classlist.npy")
            if not (isinstance(seg, list | tuple | np.ndarray) and len(seg) == 2 and all(map(is_finite_number, seg))):
                raise InputError(f"{files['segments']}: video {video}: segment {seg!r} is not [start, end] (seconds)")
            anns.append({"label": label, "segment": [float(seg[0]), float(seg[1])]})
        dur = float(duration[i])
        out[video] = {
            "subset": rename.get(subsets[i], subsets[i]),
            "duration": dur if np.isfinite(dur) else None,
            "annotations": anns,
        }
    return names, classlist, out


def read_wtalc_annotations(folder: str | os.PathLike) -> Annotations:
    """A W-TALC `<Name>-Annotations/` folder → the flat annotation form (see `read_wtalc_folder`)."""
    return read_wtalc_folder(folder)[2]


_joint_cache: dict[tuple[str, int, int], np.ndarray] = {}


def read_wtalc_features(path: str | os.PathLike, *, progress: bool = True) -> np.ndarray:
    """The JOINT features file → its array [N] (one [T, 2048] row per video), read once per process.

    The last file read stays cached (keyed by path, size and mtime), so the train and test splits of a run share
    one copy; reading another file drops it first.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _joint_cache:
        _joint_cache.clear()
        array = read_npy(path, progress=progress)
        if array.ndim < 1:
            raise InputError(f"{path}: a 0-d array, expected one [T, 2048] feature array per video")
        _joint_cache[key] = array
    return _joint_cache[key]

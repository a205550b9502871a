"""The one config of a run: every setting (`Config`), the per-dataset defaults of method §8, the `--demo` config, the
range check of every numeric setting, and settings files (`--config FILE`: a run's `<data_name>_config.json`, or a
JSON / YAML mapping of settings). main.py builds a Config from the command line (`main.make_config`); train.py,
inference.py, seeds.py and localize.py read it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import postprocess
from utils import (
    MAX_THRESHOLDS,
    InputError,
    format_thresholds,
    is_finite_number,
    number_problem,
    parse_act_th,
    parse_seeds,
    read_json,
    show_value,
)

# method §8 per-dataset settings (the authors' values); a flag given on the command line overrides them.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "thumos14": {"num_seg": 750, "batch_size": 32, "alpha": 0.5, "pool": False},
    "activitynet1.2": {"num_seg": 80, "batch_size": 128, "alpha": 0.8, "pool": True},
    "activitynet1.3": {"num_seg": 80, "batch_size": 128, "alpha": 0.8, "pool": True},
}
# `--demo`: a config small enough to train on a 2-core CPU in minutes (the synthetic videos have L 15–117).
DEMO_DEFAULTS: dict[str, Any] = {
    "data_path": "demo_data",
    "data_name": "thumos14",
    "save_path": "outputs/demo",
    "num_seg": 48,
    "batch_size": 8,
    "num_iter": 60,
    "eval_iter": 20,
    "init_lr": 3e-4,  # few steps: a larger rate than the authors' 1e-4 (still cosine-annealed to 0)
    "overwrite": True,  # its own folder holds throwaway runs: a second `--demo` replaces the first (a note says so)
}
# Where trained checkpoints come from, for the message about a missing --model_file.
CHECKPOINT_HELP = (
    "the authors' released checkpoints (THUMOS14: https://mega.nz/folder/Wp8A3a7C#bxvp6NuLMUoFJ5oZD1Z2dw, "
    "ActivityNet 1.2/1.3: https://mega.nz/folder/25sjxQJb#ypIrl0AWG7sFpD3KfQ1xLg) or one trained with main.py "
    "(<save_path>/<data_name>.pth)"
)
# How a command continued a run, not what the run is: left out of checkpoints and of the config file, so a run paused
# and resumed (--stop_at, --resume, after a kill) writes the same checkpoint bytes as an uninterrupted one.
INVOCATION_KEYS = ("resume", "stop_at", "overwrite")
# The settings that change test results; --model_file takes them from the checkpoint unless a flag is given.
TEST_SETTINGS = ("num_seg", "cls_th", "iou_th", "act_th", "alpha", "fps", "rate", "pool")


@dataclass
class Config:
    """Every setting of a run, printed at start and stored in checkpoints (`meta["config"]`)."""

    data_path: str = "data"
    data_name: str = "thumos14"
    save_path: str = "outputs"
    num_seg: int = 750
    batch_size: int = 32
    num_iter: int = 2000
    eval_iter: int = 100
    init_lr: float = 1e-4
    weight_decay: float = 1e-3
    lamda: float = 0.1
    cls_th: float = 0.1
    iou_th: float = 0.1
    act_th: list[float] = field(default_factory=postprocess.ACT_THRESHOLDS.tolist)
    alpha: float = 0.5
    fps: float = 25.0
    rate: int = 16
    workers: int = 0
    seed: int = 42
    seeds: list[int] | None = None
    pool: bool = False
    annotation_file: str | None = None
    ambiguous: bool = True
    model_file: str | None = None
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    stop_at: int | None = None
    val_fraction: float = 0.0
    demo: bool = False
    save_vis: bool = False
    diagnose: bool = False  # --model_file: DETAD's error analyses of the test run (diagnose.py)
    video: str | None = None
    rgb_weights: str | None = None
    flow_weights: str | None = None
    show_all: bool = False  # --video's table and pictures: every detection, not only postprocess.display_detections
    flow: str = "tvl1"  # --video's optical flow: tvl1.py (the authors' CUDA TV-L1) or "opencv" (OpenCV's CPU class)
    progress: bool = True
    tf32: bool = False
    cudnn_benchmark: bool = False
    preload: bool = False
    skip_bad: bool = False
    bootstrap: int | None = None  # --model_file: 95 % intervals from this many resamples of the test videos

    def summary(self) -> str:
        items = dataclasses.asdict(self)
        items["act_th"] = format_thresholds(self.act_th)
        return "config: " + " ".join(f"{k}={v}" for k, v in items.items())


# The range of every numeric flag, checked up front (`--init_lr -1` was an Adam traceback, `--lamda nan` a NaN loss
# and a garbage checkpoint with exit 0). flag → (test, what the one-line error says the value must be).
AT_LEAST_1 = (lambda v: v >= 1, "at least 1")
POSITIVE = (lambda v: v > 0, "a finite number > 0")
NON_NEGATIVE = (lambda v: v >= 0, "a finite number >= 0")
UNIT = (lambda v: 0 <= v <= 1, "a finite number in [0, 1]")  # scores and tIoUs lie in [0, 1]
SEED = (lambda v: 0 <= v < 2**32, "in [0, 2**32)")  # numpy.random.seed's range
# Upper bounds where a value costs memory or processes without limit (the batch's memory is train.check_memory's).
MAX_RATE = 1024  # post-processing scores rate × L frames per video (method §9.3); I3D snippets have 16
MAX_WORKERS = max(16, 4 * (os.cpu_count() or 1))  # each data-loading worker is a process with its own memory
MAX_SEEDS = 100  # one full training run, and one folder, per seed
MAX_RESAMPLES = 10_000  # bootstrap: memory grows with resamples × videos (× classes × tIoUs)
RESAMPLES = (
    lambda v: 1 <= v <= MAX_RESAMPLES,
    f"in [1, {MAX_RESAMPLES}] (memory grows with the resamples; a 95 % interval settles long before)",
)
FLAG_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "num_seg": AT_LEAST_1,
    "batch_size": AT_LEAST_1,
    "num_iter": AT_LEAST_1,
    "eval_iter": AT_LEAST_1,
    "rate": (
        lambda v: 1 <= v <= MAX_RATE,
        f"in [1, {MAX_RATE}] (frames per snippet; post-processing works on rate × L frames)",
    ),
    "stop_at": AT_LEAST_1,
    "bootstrap": RESAMPLES,
    "workers": (lambda v: 0 <= v <= MAX_WORKERS, f"in [0, {MAX_WORKERS}] (4 × this machine's CPUs, at least 16)"),
    "seed": SEED,
    "init_lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "lamda": NON_NEGATIVE,
    "cls_th": UNIT,
    "iou_th": UNIT,
    "alpha": POSITIVE,
    "fps": POSITIVE,
    "val_fraction": (lambda v: 0 <= v < 1, "a finite number in [0, 1)"),
}


def check_range(flag: str, value: Any) -> None:
    """One numeric flag against FLAG_RANGES (None = not set) → InputError `--<flag> <value>: must be <rule>`."""
    ok, must = FLAG_RANGES[flag]
    if value is not None and not (is_finite_number(value) and ok(value)):
        shown = f"{value:g}" if type(value) is float else show_value(value)
        raise InputError(f"--{flag} {shown}: must be {must}")


def validate(cfg: Config) -> None:
    """Refuse settings that cannot run, in one line each, before anything is read or written."""
    for flag in FLAG_RANGES:
        check_range(flag, getattr(cfg, flag))
    if len(cfg.act_th) > MAX_THRESHOLDS:
        raise InputError(
            f"--act_th: {len(cfg.act_th)} thresholds, at most {MAX_THRESHOLDS} (post-processing time and memory grow "
            "with the count; the method uses 18: 0.1:1.0:0.05)"
        )
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in cfg.act_th):
        raise InputError(
            f"--act_th {format_thresholds(cfg.act_th)}: thresholds must lie in [0, 1] (scores are clipped)"
        )
    if cfg.seeds is not None:
        if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
            raise InputError(f"--seeds {cfg.seeds}: give one or more distinct seeds")
        if len(cfg.seeds) > MAX_SEEDS:
            raise InputError(f"--seeds: {len(cfg.seeds)} seeds, at most {MAX_SEEDS} (one training run and folder each)")
        for seed in cfg.seeds:
            check_range("seed", seed)
        if cfg.model_file or cfg.video:
            raise InputError("--seeds trains one run per seed; it does not go with --model_file or --video")
    if cfg.video and not cfg.model_file:
        raise InputError(f"--video needs --model_file, a trained ACRNet checkpoint: {CHECKPOINT_HELP}")
    if cfg.bootstrap is not None and (cfg.video or not cfg.model_file):
        raise InputError(
            "--bootstrap gives intervals of a checkpoint's test mAP: give --model_file (not --video); for a run's "
            "predictions use python evaluate.py GT PRED --bootstrap"
        )
    if cfg.diagnose and (cfg.video or not cfg.model_file):
        raise InputError(
            "--diagnose diagnoses a checkpoint's test run: give --model_file (not --video); for a run's predictions "
            "use python evaluate.py GT PRED --diagnose OUT"
        )


# --- settings files (--config) -------------------------------------------------------------------------------------

CHOICES = {"data_name": tuple(DATASET_DEFAULTS), "flow": ("tvl1", "opencv")}


def read_settings(path: str | Path) -> dict[str, Any]:
    """A settings file → {setting: value}, each checked as its flag would be. The file is a run's
    `<data_name>_config.json` (its "settings" are read, the rest is information) or a mapping of Config fields in
    JSON, or in YAML for a `.yaml` / `.yml` name. An unknown key, a value of the wrong type or out of range → one
    InputError line naming the file and the key."""
    path = Path(path)
    data = _read_yaml(path) if path.suffix.lower() in (".yaml", ".yml") else read_json(path)
    if isinstance(data, dict) and isinstance(data.get("settings"), dict):
        data = data["settings"]  # a run's config file
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings (setting: value)")
    fields = {f.name: f.type for f in dataclasses.fields(Config)}
    settings = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            known = f"did you mean {close[0]!r}?" if close else f"the settings are {', '.join(fields)}"
            raise InputError(f"{path}: unknown setting {key!r} ({known})")
        settings[key] = _setting(path, key, value, str(fields[key]))
    return settings


class _DuplicateKey(Exception):
    """(key, line) of a key that a YAML mapping holds twice."""


def _unique_key_loader(yaml: Any) -> type:
    """yaml.SafeLoader that refuses a key given twice in one mapping (SafeLoader keeps the last one silently)."""

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({type(e).__name__})") from None
    try:
        return yaml.load(text, Loader=_unique_key_loader(yaml))  # plain data only: never constructs objects
    except _DuplicateKey as e:
        raise InputError(f"{path}: key {e.args[0]!r} appears twice in one mapping (line {e.args[1]})") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where else ""
        raise InputError(f"{path}: not valid YAML ({getattr(e, 'problem', None) or type(e).__name__}{at})") from None
    except ValueError as e:  # an integer over Python's 4300-digit conversion limit
        raise InputError(f"{path}: a number it holds cannot be read ({str(e).split(';')[0]})") from None


class _OutOfRange(ValueError):
    """A value of the right type that its flag's range refuses; the message says what it must be."""


class _NotFinite(_OutOfRange):
    """A number that is not finite (1e400, a 400-digit integer, NaN, Infinity); the message names it as written."""


def _value(key: str, value: Any, kind: str) -> Any:
    """One setting's value, by its Config type (`kind`: "int", "float | None", "list[float]", ...) → the value as the
    Config holds it. ValueError: not of the type (or choice); _OutOfRange: outside its flag's range or not finite."""
    number = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    base = kind.replace(" | None", "")
    numbers = value if base.startswith("list[") and isinstance(value, list) else [value]
    for x in numbers:  # 1e400, a 400-digit integer, NaN, Infinity: named as written, not as inf / nan
        if number(x) and not is_finite_number(x):
            raise _NotFinite(number_problem(x))
    if value is None and "None" in kind:
        return None
    original = value
    if base == "list[float]" and isinstance(value, str):
        value = parse_act_th(value)
    elif base == "list[int]" and isinstance(value, str):
        value = parse_seeds(value)
    elif base == "float" and isinstance(value, str):
        value = float(value)  # YAML reads 1e-4 (no dot) as a string
        if not math.isfinite(value):
            raise _NotFinite(f"{show_value(original)} is not a finite number")
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: number(v) and isinstance(v, int),
        "float": number,
        "str": lambda v: isinstance(v, str) and v in CHOICES.get(key, (v,)),
        "list[float]": lambda v: isinstance(v, list) and bool(v) and all(map(number, v)),
        "list[int]": lambda v: isinstance(v, list) and all(number(x) and isinstance(x, int) for x in v),
    }[base](value)
    if not ok:
        raise ValueError
    value = float(value) if base == "float" else [float(v) for v in value] if base == "list[float]" else value
    if key in FLAG_RANGES and not FLAG_RANGES[key][0](value):
        raise _OutOfRange(f"must be {FLAG_RANGES[key][1]}")
    if key == "act_th" and not all(math.isfinite(v) and 0 <= v <= 1 for v in value):
        raise _OutOfRange("must lie in [0, 1] (scores are clipped)")
    return value


def _expected(key: str, kind: str) -> str:
    return f"one of {', '.join(CHOICES[key])}" if key in CHOICES else f"a value of type {kind}"


def _setting(path: Path, key: str, value: Any, kind: str) -> Any:
    """One setting of a settings file → the value; else one line naming the file and the setting."""
    try:
        return _value(key, value, kind)
    except _NotFinite as e:
        raise InputError(f"{path}: setting {key}: {e}") from None
    except _OutOfRange as e:
        shown = f"{value:g}" if type(value) is float else show_value(value)
        raise InputError(f"{path}: --{key} {shown}: {e}") from None
    except ValueError:
        raise InputError(f"{path}: setting {key}: {show_value(value)} is not {_expected(key, kind)}") from None
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def stored_setting(path: str | Path, key: str, value: Any, *, flag_replaces: bool = True) -> Any:
    """A setting stored in the config of checkpoint `path` (utils.save_checkpoint), checked as its flag is → the value;
    else one line naming the checkpoint and the field, and (`flag_replaces`) that the flag replaces the stored value."""
    kind = str(next(f.type for f in dataclasses.fields(Config) if f.name == key))
    hint = f" (a --{key} flag replaces the checkpoint's value)" if flag_replaces else ""
    where = f"{path}: stored setting config.{key} = {show_value(value)}"
    try:
        return _value(key, value, kind)
    except _OutOfRange as e:
        raise InputError(f"{where}: {e}{hint}") from None
    except (ValueError, InputError):
        raise InputError(f"{where}: is not {_expected(key, kind)}{hint}") from None

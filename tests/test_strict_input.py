"""Input that used to be read as something else than it says (issue 20): duplicate JSON keys, numbers float64 cannot
hold or that are no numbers, one video under two ids, a truncated video, snippet counts that do not fit the annotated
duration, unknown subsets. Each is one line through the command lines (`evaluate.main`, `main.main`, `extract.main`):
an error naming file, video and field (exit 2), or one warning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import dataset
import evaluate
import main
import utils
from demo import make_demo

TINY = ["--num_seg", "16", "--batch_size", "2", "--num_iter", "1", "--no_progress", "--device", "cpu"]
GT_VIDEO = "video_test_0000001"


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(utils, "_WARNED", set())


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("data"), seed=0, max_train=4, max_test=2)


def gt_text(end: str = "10", duration: str = "30.0", subset: str = "test") -> str:
    """A flat annotations JSON with one instance [0, end] of class A in GT_VIDEO, numbers as raw JSON text."""
    return (
        f'{{"{GT_VIDEO}": {{"subset": "{subset}", "duration": {duration}, '
        f'"annotations": [{{"label": "A", "segment": [0, {end}]}}]}}}}'
    )


def pred_text(score: str = "0.9", end: str = "10", video: str = GT_VIDEO) -> str:
    return f'{{"results": {{"{video}": [{{"label": "A", "score": {score}, "segment": [0, {end}]}}]}}}}'


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_evaluate(capsys, gt: Path, pred: Path, *flags: str) -> tuple[int, str, str]:
    code = evaluate.main([str(gt), str(pred), *flags])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- 5. duplicate keys ---------------------------------------------------------------------------------------------


def test_duplicate_video_id_in_annotations_and_predictions_is_refused(tmp_path, capsys):
    entry = gt_text()[len(f'{{"{GT_VIDEO}": ') : -1]
    gt = write(tmp_path / "gt.json", f'{{"{GT_VIDEO}": {entry}, "{GT_VIDEO}": {entry}}}')
    pred = write(tmp_path / "pred.json", pred_text())
    assert run_evaluate(capsys, gt, pred) == (
        2,
        "",
        f"error: {gt}: key '{GT_VIDEO}' appears twice in one object (JSON readers keep only the last)\n",
    )
    good = write(tmp_path / "gt_ok.json", gt_text())
    preds = pred_text()[len('{"results": {') : -2]
    dup = write(tmp_path / "pred_dup.json", f'{{"results": {{{preds}, {preds}}}}}')
    code, _, err = run_evaluate(capsys, good, dup)
    assert (code, err) == (
        2,
        f"error: {dup}: key '{GT_VIDEO}' appears twice in one object (JSON readers keep only the last)\n",
    )
    assert run_evaluate(capsys, good, pred)[0] == 0  # the same files without the duplicate are fine


def test_duplicate_key_inside_an_entry_and_in_a_config_file(tmp_path, capsys):
    inner = write(tmp_path / "gt.json", gt_text().replace('"subset": "test"', '"subset": "test", "subset": "val"'))
    code, _, err = run_evaluate(capsys, inner, write(tmp_path / "p.json", pred_text()))
    assert (code, err) == (
        2,
        f"error: {inner}: key 'subset' appears twice in one object (JSON readers keep only the last)\n",
    )
    cfg = write(tmp_path / "cfg.json", '{"num_seg": 16, "num_seg": 32}')
    assert main.main(["--config", str(cfg)]) == 2
    assert capsys.readouterr().err == (
        f"error: {cfg}: key 'num_seg' appears twice in one object (JSON readers keep only the last)\n"
    )


def test_duplicate_video_id_through_main(tiny_data, tmp_path, capsys):
    text = (tiny_data / "thumos14" / "annotations.json").read_text()
    data = json.loads(text)
    first = next(iter(data))
    body = text.strip()[1:-1]  # the entries, as written
    dup = write(tmp_path / "annotations.json", f'{{{body}, "{first}": {json.dumps(data[first])}}}')
    argv = ["--data_path", str(tiny_data), "--annotation_file", str(dup), "--save_path", str(tmp_path / "out"), *TINY]
    assert main.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {dup}: key '{first}' appears twice in one object (JSON readers keep only the last)\n"
    )


def test_read_json_keeps_numbers_and_objects_exactly(tmp_path):
    """The strict reader changes nothing on ordinary files: same values and types as json.loads."""
    rng = np.random.default_rng(0)
    obj = {
        f"v{i}": {"n": int(rng.integers(-(10**18), 10**18)), "x": float(rng.standard_normal()), "l": [1, 2.5, None]}
        for i in range(50)
    } | {"big": 10**300, "tiny": 5e-324, "max": 1.7976931348623157e308, "neg0": -0.0, "b": True, "s": "1e400"}
    path = write(tmp_path / "ok.json", json.dumps(obj))
    got = utils.read_json(path)
    assert got == json.loads(path.read_text())
    assert all(type(got[k]) is type(obj[k]) for k in obj)


# --- 6. numbers: huge, non-finite, or no number ---------------------------------------------------------------------

HUGE = "1" + "0" * 400
BAD_NUMBERS = [  # (JSON text, the phrase the user sees)
    (HUGE, "1000000000…0000000000 (401 digits) is not a finite number"),
    ("-" + "9" * 400, "-999999999…9999999999 (400 digits) is not a finite number"),
    ("7" * 5000, "7777777777…7777777777 (5000 digits) is not a finite number"),  # over int()'s 4300-digit limit
    ("1e400", "1e400 is not a finite number"),
    ("-2.5E+999", "-2.5E+999 is not a finite number"),
    ("NaN", "NaN is not a finite number"),
    ("Infinity", "Infinity is not a finite number"),
    ("-Infinity", "-Infinity is not a finite number"),
    ("true", "true is not a number"),
    ("false", "false is not a number"),
    ('"0.5"', '"0.5" is not a number (a string)'),
    ("null", "null is not a number"),
    ("[1]", "[1] is not a number"),
]
NUMBER_IDS = ["huge-int", "huge-negative-int", "5000-digits", "1e400", "-2.5E+999", "NaN", "Infinity", "-Infinity",
              "true", "false", "string", "null", "list"]  # fmt: skip


@pytest.mark.parametrize(("raw", "phrase"), BAD_NUMBERS, ids=NUMBER_IDS)
@pytest.mark.parametrize("field", ["score", "segment end"])
def test_evaluate_prediction_number(tmp_path, capsys, raw, phrase, field):
    gt = write(tmp_path / "gt.json", gt_text())
    pred = write(tmp_path / "p.json", pred_text(score=raw) if field == "score" else pred_text(end=raw))
    assert run_evaluate(capsys, gt, pred) == (
        2,
        "",
        f"error: {pred}: video '{GT_VIDEO}' prediction 0: {field} {phrase}\n",
    )


@pytest.mark.parametrize(("raw", "phrase"), BAD_NUMBERS, ids=NUMBER_IDS)
@pytest.mark.parametrize("field", ["segment end", "duration"])
def test_evaluate_ground_truth_number(tmp_path, capsys, raw, phrase, field):
    gt = write(tmp_path / "gt.json", gt_text(end=raw) if field == "segment end" else gt_text(duration=raw))
    pred = write(tmp_path / "p.json", pred_text())
    if field == "duration" and raw == "null":  # a null duration means "not known" (the txt format has none)
        assert run_evaluate(capsys, gt, pred)[0] == 0
        return
    where = "annotation 0 (A): segment end" if field == "segment end" else "duration"
    assert run_evaluate(capsys, gt, pred) == (2, "", f"error: {gt}: video '{GT_VIDEO}': {where} {phrase}\n")


TXT_NUMBERS = [  # a txt file's words: any number Python's float reads, else not a number
    (HUGE, "1000000000…0000000000 (401 digits) is not a finite number"),
    ("1e400", "1e400 is not a finite number"),
    ("nan", "nan is not a finite number"),
    ("-inf", "-inf is not a finite number"),
    ("Infinity", "Infinity is not a finite number"),
    ("true", '"true" is not a number (a string)'),
    ("1,5", '"1,5" is not a number (a string)'),
]


@pytest.mark.parametrize(("raw", "phrase"), TXT_NUMBERS, ids=[r[:8] for r, _ in TXT_NUMBERS])
def test_evaluate_ambiguous_file_number(tmp_path, capsys, raw, phrase):
    gt = write(tmp_path / "gt.json", gt_text())
    amb = write(tmp_path / "Ambiguous_test.txt", f"{GT_VIDEO} 1.0 2.0\n{GT_VIDEO} 3.0 {raw}\n")
    code, _, err = run_evaluate(capsys, gt, write(tmp_path / "p.json", pred_text()), "--ambiguous", str(amb))
    assert (code, err) == (2, f"error: {amb}:2: video {GT_VIDEO}: segment end {phrase}\n")


def _bad_annotations(tiny_data: Path, folder: Path, field: str, raw: str) -> tuple[Path, str]:
    """A copy of the tiny dataset's annotations (and Ambiguous files) in `folder` whose first test video's first
    segment end or duration is the JSON text `raw` → (path, that video)."""
    src = tiny_data / "thumos14"
    for amb in src.glob("Ambiguous_*.txt"):
        shutil.copy(amb, folder / amb.name)
    data = json.loads((src / "annotations.json").read_text())
    video = sorted(v for v, e in data.items() if e["subset"] == "test" and e["annotations"])[0]
    placeholder = 123456.789
    if field == "duration":
        data[video]["duration"] = placeholder
    else:
        data[video]["annotations"][0]["segment"][1] = placeholder
    path = write(folder / "annotations.json", json.dumps(data).replace(str(placeholder), raw))
    return path, video


@pytest.mark.parametrize(("raw", "phrase"), BAD_NUMBERS, ids=NUMBER_IDS)
@pytest.mark.parametrize("field", ["segment end", "duration"])
def test_main_annotation_number(tiny_data, tmp_path, capsys, raw, phrase, field):
    path, video = _bad_annotations(tiny_data, tmp_path, field, raw)
    if field == "duration" and raw == "null":  # "not known": read as None
        assert dataset.read_annotations(path)[video]["duration"] is None
        return
    label = json.loads(path.read_text().replace(raw, "0"))[video]["annotations"][0]["label"]
    where = f"annotation 0 ({label}): segment end" if field == "segment end" else "duration"
    argv = ["--data_path", str(tiny_data), "--annotation_file", str(path), "--save_path", str(tmp_path / "out"), *TINY]
    assert main.main(argv) == 2
    assert capsys.readouterr().err == f"error: {path}: video '{video}': {where} {phrase}\n"


@pytest.mark.parametrize(("raw", "phrase"), TXT_NUMBERS, ids=[r[:8] for r, _ in TXT_NUMBERS])
def test_main_ambiguous_file_number(tiny_data, tmp_path, capsys, raw, phrase):
    path, video = _bad_annotations(tiny_data, tmp_path, "duration", "30.0")  # a good copy beside a bad Ambiguous file
    amb = tmp_path / "Ambiguous_test.txt"
    amb.write_text(f"{video} 0.5 1.0\n{video} 2.0 {raw}\n")
    argv = ["--data_path", str(tiny_data), "--annotation_file", str(path), "--save_path", str(tmp_path / "out"), *TINY]
    assert main.main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {amb}:2: video {video}: segment end {phrase}"


@pytest.mark.parametrize(("raw", "phrase"), BAD_NUMBERS, ids=NUMBER_IDS)
@pytest.mark.parametrize("setting", ["init_lr", "num_seg", "act_th"])
def test_main_config_number(tmp_path, capsys, raw, phrase, setting):
    value = f"[0.5, {raw}]" if setting == "act_th" else raw
    cfg = write(tmp_path / "cfg.json", f'{{"{setting}": {value}}}')
    assert main.main(["--config", str(cfg), "--data_path", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    if setting == "init_lr" and raw == '"0.5"':  # a float setting may be a string (YAML reads 1e-4 as one): taken
        assert err == f"error: {tmp_path / 'none'}: data folder not found (--data_path)\n"
        return
    assert err.count("\n") == 1 and err.startswith(f"error: {cfg}: setting {setting}: "), err
    if "finite" in phrase:  # a number, but not a finite one: named as written
        assert err == f"error: {cfg}: setting {setting}: {phrase}\n"
    else:  # no number at all: the type the setting needs
        shown = phrase.split(" is not")[0]
        kind = {"init_lr": "float", "num_seg": "int", "act_th": "list[float]"}[setting]
        shown = f"[0.5, {shown}]" if setting == "act_th" else shown
        assert err == f"error: {cfg}: setting {setting}: {shown} is not a value of type {kind}\n"


@pytest.mark.parametrize("flag", ["--num_seg", "--batch_size", "--seed"])
def test_huge_integer_flag_is_one_line(capsys, flag):
    assert main.main([flag, HUGE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {flag} 1000000000…0000000000 (401 digits): must be"), err


def test_is_finite_number_matches_float_conversion():
    """Slow, obvious rule: a number (not bool) whose float64 conversion succeeds and is finite."""

    def slow(x):
        if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
            return False
        try:
            return bool(np.isfinite(float(x)))
        except OverflowError:
            return False

    values = [0, -1, 10**308, 10**309, -(10**400), 2**1023, 2**1024, 1.5, float("nan"), float("inf"), -float("inf"),
              True, False, None, "1", np.int64(5), np.float32(np.inf), np.float64(3), utils.JSONNumber("1e400"),
              np.bool_(True), [1]]  # fmt: skip
    assert [utils.is_finite_number(v) for v in values] == [slow(v) for v in values]


# --- 10. one video under two ids ------------------------------------------------------------------------------------


def test_predictions_under_k_and_v_k_are_refused(tmp_path, capsys):
    gt = write(tmp_path / "gt.json", gt_text(subset="validation").replace(GT_VIDEO, "abc"))
    one = '[{"label": "A", "score": 0.9, "segment": [0, 10]}]'
    two = write(tmp_path / "p.json", f'{{"results": {{"abc": {one}, "v_abc": {one}}}}}')
    code, out, err = run_evaluate(capsys, gt, two, "--dataset", "activitynet", "--tiou", "0.5")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {two}: videos 'abc' and 'v_abc' both name ground-truth video 'abc' (ids match with or without 'v_'), "
        "so both would be scored as it; keep one\n"
    )
    for video in ("abc", "v_abc"):  # either id alone is that video
        single = write(tmp_path / f"{video}.json", f'{{"results": {{"{video}": {one}}}}}')
        code, out, _ = run_evaluate(capsys, gt, single, "--dataset", "activitynet", "--tiou", "0.5")
        assert code == 0 and "| mAP  | 100.00 | 100.00 |" in out, out


# --- 10. truncated video ----------------------------------------------------------------------------------------------

av = pytest.importorskip("av")


def write_video(path: Path, n_frames: int, options: dict[str, str] | None = None) -> Path:
    """A tiny 25 fps MPEG-4 video of a scrolling texture."""
    base = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w", options=options or {}) as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(n_frames):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.roll(base, 2 * k, axis=1), format="rgb24")))
        c.mux(s.encode())
    return path


def truncate(path: Path, out: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.mark.parametrize(("name", "options"), [("v.mp4", {"movflags": "faststart"}), ("v.avi", None)])
def test_truncated_video_warns_with_frame_counts(tmp_path, capsys, fresh_warnings, name, options):
    import video

    full = write_video(tmp_path / name, 250, options)
    assert sum(1 for _ in video.iter_frames(full)) == 250 and capsys.readouterr().err == ""
    cut = truncate(full, tmp_path / f"cut_{name}")
    n = decoded_frames(cut)
    assert 0 < n < 200
    frames = sum(1 for _ in video.iter_frames(cut))
    assert frames < 200
    assert capsys.readouterr().err == (
        f"warning: {cut}: decoded {n} of the 250 video frames its container states: the file looks truncated "
        "(half-downloaded?); only the decoded part is used\n"
    )


def test_truncated_video_without_frame_count_warns_by_duration(tmp_path, capsys, fresh_warnings):
    import video

    full = write_video(tmp_path / "v.mkv", 250)  # Matroska states a duration, no frame count
    sum(1 for _ in video.iter_frames(full))
    assert capsys.readouterr().err == ""
    cut = truncate(full, tmp_path / "cut.mkv")
    seconds = decoded_frames(cut) / 25
    sum(1 for _ in video.iter_frames(cut))
    assert capsys.readouterr().err == (
        f"warning: {cut}: decoded {seconds:.1f} s of the 10.0 s of video its container states: the file looks "
        "truncated (half-downloaded?); only the decoded part is used\n"
    )


def test_extract_warns_on_a_truncated_video(tmp_path, capsys, fresh_warnings):
    from reference_extract import random_i3d

    import extract

    torch.save(random_i3d(3, seed=0).state_dict(), tmp_path / "rgb.pt")
    vids = tmp_path / "videos"
    vids.mkdir()
    truncate(write_video(tmp_path / "full.mp4", 100, {"movflags": "faststart"}), vids / "cut.mp4")
    out = tmp_path / "features"
    argv = ["--video_dir", str(vids), "--output_dir", str(out), "--rgb_weights", str(tmp_path / "rgb.pt")]
    assert extract.main([*argv, "--device", "cpu", "--no_jpeg"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {vids / 'cut.mp4'}: decoded {decoded_frames(vids / 'cut.mp4')} of the 100 video frames" in err
    assert np.load(out / "cut_rgb.npy").shape[0] >= 1


# --- 10. snippet counts against durations; unknown subsets ------------------------------------------------------------


def _copy_dataset(tiny_data: Path, folder: Path) -> Path:
    shutil.copytree(tiny_data / "thumos14", folder / "thumos14")
    return folder


def test_features_far_from_duration_warn_once(tiny_data, tmp_path, capsys, fresh_warnings):
    data = _copy_dataset(tiny_data, tmp_path)
    assert len(dataset.load_split(data, "thumos14", "test", progress=False)) == 2
    assert capsys.readouterr().err == ""  # the demo's features fit their durations
    ann_path = data / "thumos14" / "annotations.json"
    ann = json.loads(ann_path.read_text())
    test = sorted(v for v, e in ann.items() if e["subset"] == "test")
    split = dataset.load_split(data, "thumos14", "test", progress=False)
    L = dict(zip(split.videos, split.num_snippets, strict=True))
    ann[test[0]]["duration"] = 13.9  # far fewer seconds than its snippets need (100 k rows for 13.9 s in the issue)
    for a in ann[test[0]]["annotations"]:
        a["segment"] = [min(a["segment"][0], 13.0), min(a["segment"][1], 13.5)]
    ann_path.write_text(json.dumps(ann))
    dataset.load_split(data, "thumos14", "test", progress=False)
    dataset.load_split(data, "thumos14", "test", progress=False)  # once per process
    assert capsys.readouterr().err == (
        f"warning: {ann_path}: 1 test video(s) whose feature files hold far more or fewer snippets than their "
        f"annotated duration allows at 16 frames / 25 fps: {test[0]} ({L[test[0]]} for 13.9 s, expected ~22); "
        "their predicted times will be wrong (features of another video, or another --fps / --rate?)\n"
    )


def test_snippet_count_rule_matches_a_loop(fresh_warnings, capsys):
    """warn_snippet_counts flags exactly the videos a plain loop over the rule flags (random and edge cases)."""
    rng = np.random.default_rng(1)
    durations = [*rng.uniform(1, 500, 200), 0.0, 6.4, 6.4, 100.0, 100.0, None]
    L = [*(int(d * 25 / 16 + rng.integers(-12, 13)) for d in durations[:200]), 4, 6, 15, 151, 167, 11]
    L = [max(1, n) for n in L]
    split = dataset.Split(
        data_name="thumos14", split="test", classes=["A"], videos=[f"v{i:03d}" for i in range(len(L))],
        labels=np.zeros((len(L), 1), np.float32), num_snippets=L, rgb_paths=[], flow_paths=[], durations=durations,
        ground_truth={}, annotation_file=Path("a.json"),
    )  # fmt: skip
    flagged = []
    for v, n, d in zip(split.videos, L, durations, strict=True):
        if d is not None:
            expected = d * 25 / 16
            if abs(n - expected) > max(4, 0.05 * expected):
                flagged.append(v)
    assert 10 < len(flagged) < 200
    dataset.warn_snippet_counts(split)
    err = capsys.readouterr().err
    assert f": {len(flagged)} test video(s) whose feature files" in err
    assert f"{flagged[0]} (" in err and f"and {len(flagged) - 3} more;" in err


def test_unknown_subset_is_counted_in_one_warning(tiny_data, tmp_path, capsys, fresh_warnings):
    data = _copy_dataset(tiny_data, tmp_path)
    ann_path = data / "thumos14" / "annotations.json"
    ann = json.loads(ann_path.read_text())
    test = sorted(v for v, e in ann.items() if e["subset"] == "test")
    ann[test[0]]["subset"] = "TEST"
    ann_path.write_text(json.dumps(ann))
    split = dataset.load_split(data, "thumos14", "test", progress=False)
    assert test[0] not in split.videos and len(split) == 1
    assert capsys.readouterr().err == (
        f"warning: {ann_path}: 1 video(s) with a subset thumos14 does not have, not used: 'TEST' (1) "
        "(its subsets: val, test)\n"
    )
    # evaluate.py: the same line; a --subset the user names is known
    utils._WARNED.clear()
    pred = write(tmp_path / "p.json", "{}")
    code, _, err = run_evaluate(capsys, ann_path, pred)
    assert code == 0 and err.splitlines()[0] == (
        f"warning: {ann_path}: 1 video(s) with a subset thumos14 does not have, not used: 'TEST' (1) "
        "(its subsets: val, test)"
    )
    code, _, err = run_evaluate(capsys, ann_path, pred, "--subset", "TEST")
    assert code == 0 and "subset" not in err

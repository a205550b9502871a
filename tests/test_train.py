"""train.py: the authors' batch stream (method §8) against its literal construction and its exact statistics; one batch
whatever the path (DataLoader workers, a resume, --preload); the rounded best-checkpoint rule, alone and in a run;
and Split.subset, which the held-out split is built on."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import dataset
import evaluate
import inference
import main
import train
from demo import make_demo
from utils import load_checkpoint

TINY = ["--num_seg", "16", "--batch_size", "2", "--eval_iter", "1", "--no_progress", "--seed", "3"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("data"), seed=0, max_train=6, max_test=3)


# --- the batch stream --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("videos, batch, steps", [(200, 32, 2000), (7, 4, 5), (5, 8, 3), (1, 3, 2), (40, 1, 7)])
def test_stream_is_the_literal_list_permuted_once(videos, batch, steps):
    """method §8 word for word: list item i = video i mod V, one permutation of the whole list, step k = a slice."""
    stream = train.BatchStream(videos, batch, steps, seed=11)
    items = [i % videos for i in range(batch * steps)]
    perm = np.random.default_rng([11, train.STREAM_TAG]).permutation(batch * steps)  # the same draw, by hand
    permuted = [items[p] for p in perm]
    for k in range(1, steps + 1):
        assert stream.videos(k).tolist() == permuted[(k - 1) * batch : k * batch]
    # every video visited equally often: N // V times, one more for the first N mod V videos
    n = batch * steps
    want = [n // videos + (v < n % videos) for v in range(videos)]
    assert np.bincount(stream.order, minlength=videos).tolist() == want
    with pytest.raises(IndexError):
        stream.videos(steps + 1)


def test_stream_is_seeded():
    a, b = train.BatchStream(200, 32, 50, seed=1), train.BatchStream(200, 32, 50, seed=1)
    assert np.array_equal(a.order, b.order) and a.draws(7) == b.draws(7)
    assert not np.array_equal(a.order, train.BatchStream(200, 32, 50, seed=2).order)
    seeds = [s for k in range(1, 51) for _, s in a.draws(k)]
    assert len(set(seeds)) == len(seeds)  # every visit draws its own snippet sample


def test_repeats_per_batch_match_the_exact_expectation():
    """THUMOS14 sizes (V 200, B 32, 2000 steps, 320 copies of each video): a batch holds some video twice with
    probability 1 - prod_j (N - j·m) / (N - j) = 92.7 %, and C(B, 2)·(m - 1)/(N - 1) same-video pairs on average.
    (Shuffled passes over the videos, the stream before this issue, repeat only in batches that straddle two passes.)"""
    V, B, K = 200, 32, 2000
    N, m = B * K, B * K // V
    p_repeat = 1 - math.prod((N - j * m) / (N - j) for j in range(B))
    mean_pairs = math.comb(B, 2) * (m - 1) / (N - 1)
    assert p_repeat == pytest.approx(0.9267, abs=1e-4)
    repeat, pairs = [], []
    for seed in (0, 1, 2):
        batches = train.BatchStream(V, B, K, seed).order.reshape(K, B)
        counts = np.stack([np.bincount(row, minlength=V) for row in batches])  # [K, V]
        repeat.append((counts > 1).any(axis=1))
        pairs.append((counts * (counts - 1) // 2).sum(axis=1))
    repeat, pairs = np.concatenate(repeat), np.concatenate(pairs)
    sigma = math.sqrt(p_repeat * (1 - p_repeat) / len(repeat))
    assert abs(repeat.mean() - p_repeat) < 4 * sigma, (repeat.mean(), p_repeat)
    assert abs(pairs.mean() - mean_pairs) < 4 * pairs.std() / math.sqrt(len(pairs)), (pairs.mean(), mean_pairs)


def test_a_batch_is_the_same_through_workers_resume_and_preload(tiny_data):
    split = dataset.load_split(tiny_data, "thumos14", "train", progress=False)
    feats = dataset.FeatureDataset(split, 16, mode="train")
    stream = train.BatchStream(len(split), 4, 6, seed=5)
    direct = [train.TrainSteps(feats, stream, 1, 6)[k] for k in range(6)]
    assert direct[0][0].shape == (4, 16, 2048) and direct[0][1].shape == (4, len(split.classes))
    cfg = SimpleNamespace(workers=2, seed=5)
    workers = list(inference.data_loader(train.TrainSteps(feats, stream, 1, 6), cfg, torch.device("cpu")))
    resumed = list(train.TrainSteps(feats, train.BatchStream(len(split), 4, 6, seed=5), 4, 6))
    preloaded = list(train.PreloadedSteps(feats, stream, 1, 6, torch.device("cpu")))
    for path, got, first in (("workers", workers, 0), ("resume", resumed, 3), ("preload", preloaded, 0)):
        for k, (x, y) in enumerate(got):
            assert torch.equal(x, direct[first + k][0]) and torch.equal(y, direct[first + k][1]), (path, k)
    # the snippets of one slot are method §7.3's draw for that visit's seed
    v, seed = stream.draws(2)[1]
    idx = feats.indices(v, seed)
    rgb = torch.from_numpy(np.load(split.rgb_paths[v])[idx])
    assert torch.equal(direct[1][0][1, :, :1024], rgb)


# --- the best-checkpoint rule ------------------------------------------------------------------------------------


def test_rounding_rule():
    assert train.best_index([0.4004, 0.4001]) == 0  # 40.04 then 40.01: both 40.0, the first stays
    assert train.best_index([0.4004, 0.4006]) == 1  # 40.04 then 40.06: 40.1 > 40.0, the second wins
    assert train.best_index([0.4004, 0.4006, 0.4014]) == 1  # 40.1 and 40.1
    assert train.best_index([0.0004, 0.0]) is None  # nothing rounds above 0.0 (start 0)
    assert train.best_index([]) is None
    assert train.improves(0.4006, 40.0) and not train.improves(0.4004, 40.0)
    rng = np.random.default_rng(0)
    for _ in range(200):  # the kept one = the first whose rounded value is the maximum (when that is above 0)
        avgs = (rng.integers(0, 30, rng.integers(1, 12)) / 10000 + 0.4 * rng.integers(0, 2)).tolist()
        rounded = [round(100 * a, 1) for a in avgs]
        want = rounded.index(max(rounded)) if max(rounded) > 0 else None
        assert train.best_index(avgs) == want, avgs


def test_run_keeps_the_rounded_best_checkpoint(tiny_data, tmp_path, monkeypatch, capsys):
    """Three evaluations scoring 40.04, 40.06, 40.10 %: the checkpoint, its predictions and the final table are step
    2's (40.1 beats 40.0; 40.1 again does not), not step 3's (the raw maximum)."""
    avgs = iter([0.4004, 0.4006, 0.4010])

    def fake_test_pass(model, split, cfg, device, keep_scores=False):
        avg = next(avgs)
        preds = {v: [{"label": split.classes[0], "score": avg, "segment": [0.0, 1.0]}] for v in split.videos}
        detections = evaluate.Detections.from_dict(preds)
        return inference.EvalResult(0.5, np.full(7, avg), detections, {}, np.full((len(split.classes), 7), avg))

    monkeypatch.setattr(train, "test_pass", fake_test_pass)
    save = tmp_path / "run"
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), "--device", "cpu", *TINY, "--num_iter", "3"]
    summary = main.run(main.make_config(argv))
    assert summary.selected.step == 2 and summary.selected.avg == pytest.approx(0.4006)
    assert summary.best_on_test == summary.selected and summary.held_out is None
    _, meta = load_checkpoint(save / "thumos14.pth")
    assert meta["step"] == 2 and meta["config"]["num_seg"] == 16
    results = json.loads((save / "thumos14_predictions.json").read_text())["results"]
    assert {p["score"] for ps in results.values() for p in ps} == {0.4006}
    out = capsys.readouterr().out
    assert "best test mAP (%) at step 2 of 3" in out and "40.1" in out
    (line,) = [line for line in out.splitlines() if line.startswith("step 3 of 3: ")]  # the record's line
    assert line.endswith("| test mAP@AVG 40.1 %, acc 50.0 % | kept: step 2, 40.1 %")


# --- Split.subset ------------------------------------------------------------------------------------------------


def test_split_subset_follows_every_field(tiny_data):
    split = dataset.load_split(tiny_data, "thumos14", "test", progress=False)
    assert split.ambiguous  # the demo's test videos have Ambiguous segments
    keep = [2, 0]
    sub = split.subset(keep)
    assert sub.videos == [split.videos[2], split.videos[0]]
    assert np.array_equal(sub.labels, split.labels[keep])
    for name in ("num_snippets", "rgb_paths", "flow_paths", "durations"):
        assert getattr(sub, name) == [getattr(split, name)[i] for i in keep], name
    assert sub.ground_truth == {v: split.ground_truth[v] for v in sub.videos}
    assert sub.ambiguous == {v: split.ambiguous[v] for v in sub.videos if v in split.ambiguous}
    assert (sub.classes, sub.skipped, sub.ambiguous_file) == (split.classes, split.skipped, split.ambiguous_file)
    with pytest.raises(IndexError):
        split.subset([len(split)])


def test_split_subset_refuses_an_unlisted_field(tiny_data):
    """A field added to Split without saying how a subset treats it fails loudly instead of being misaligned."""
    split = dataset.load_split(tiny_data, "thumos14", "train", progress=False)

    @dataclasses.dataclass
    class Wider(dataset.Split):
        fps: list[float] = dataclasses.field(default_factory=list)

    wider = Wider(**{f.name: getattr(split, f.name) for f in dataclasses.fields(split)}, fps=[25.0] * len(split))
    with pytest.raises(TypeError, match="'fps'"):
        wider.subset([0])
    misaligned = dataclasses.replace(split, durations=split.durations[:-1])
    with pytest.raises(ValueError, match="durations"):
        misaligned.subset([0])

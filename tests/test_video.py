"""video.py: 25 fps resampling (vs the ffmpeg binary's recorded output), resizing, TV-L1 flow, quantisation, folders."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import tvl1
import video
from utils import InputError

# Output of the real ffmpeg CLI (9.0.2, the static build in imageio-ffmpeg 0.8.1):
#   ffmpeg -i case.mkv -r 25 -c:v ffv1 out.mkv
# on lossless ffv1/mkv files whose frame i shows the number i (frames made by `_make_video` below, timestamps and
# durations in `_CASES`); each list is the number read back from every output frame. `-r 25` to mp4 or to a jpg
# sequence gives the same frames (same CFR video sync).
_GAPS = [33, 5, 120, 40, 10, 90, 47, 61, 12, 80]
_CASES = {  # name: (timestamps ms, duration ms of every frame)
    "irregular": ([0, *itertools.accumulate(_GAPS[i % 10] for i in range(49))], 33),
    "fps30": ([round(i * 1000 / 30) for i in range(60)], 33),
    "fps19_62": ([round(i * 1000 / 19.62) for i in range(40)], 50),
    "fps50": ([20 * i for i in range(60)], 20),
    "dur1ms": ([0, *itertools.accumulate(_GAPS[(3 * i) % 10] for i in range(49))], 1),
}
_FFMPEG = {
    "irregular": [0, 1, 2, 3, 3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 16, 17, 18, 19, 20, 20, 21, 22,
                  23, 23, 24, 25, 26, 27, 28, 28, 29, 30, 31, 32, 32, 33, 34, 35, 36, 36, 37, 38, 39, 40, 40, 41, 42,
                  43, 43, 44, 45, 46, 47, 48, 48, 49],
    "fps30": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 25, 26, 27, 28, 29, 31,
              32, 33, 34, 35, 37, 38, 39, 40, 41, 43, 44, 45, 46, 47, 49, 50, 51, 52, 53, 55, 56, 57, 58, 59],
    "fps19_62": [0, 1, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 9, 10, 11, 12, 12, 13, 14, 15, 16, 16, 17, 18, 19, 20, 20, 21,
                 22, 23, 23, 24, 25, 26, 27, 27, 28, 29, 30, 31, 31, 32, 33, 34, 34, 35, 36, 37, 38, 38, 39],
    "fps50": [0, 1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 43, 45, 47, 49,
              51, 53, 55, 57, 59],
    "dur1ms": [0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 7, 8, 9, 10, 11, 12, 13, 14, 14, 14, 15, 15, 16, 17, 18, 20, 21, 22, 23,
               24, 24, 24, 25, 25, 25, 27, 28, 30, 31, 32, 33, 33, 34, 34, 34, 35, 35, 36, 37, 38, 40, 41, 42, 43, 44,
               44, 44, 45, 45, 46, 47, 48],
}  # fmt: skip


def _index_image(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """RGB [h, w, 3] showing the number i as 16 black/white blocks (bit b at block b), robust to colour conversion."""
    img = np.zeros((h, w, 3), np.uint8)
    for b in range(16):
        r, c = divmod(b, 4)
        img[r * h // 4 : (r + 1) * h // 4, c * w // 4 : (c + 1) * w // 4] = 255 * ((i >> b) & 1)
    return img


def _read_index(img: np.ndarray) -> int:
    h, w = img.shape[:2]
    return sum(1 << b for b in range(16) if img[(b // 4) * h // 4 + h // 8, (b % 4) * w // 4 + w // 8].mean() > 128)


def _make_video(path: Path, frames, times_ms, rate=30, codec="ffv1") -> Path:
    """Write RGB frames with the given presentation times (ms) to a lossless mkv (PyAV)."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv444p"
        s.time_base = s.codec_context.time_base = tb
        for img, t in zip(frames, times_ms, strict=True):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = int(t), tb
            c.mux(s.encode(f))
        c.mux(s.encode())
    return path


def _tiny_video(path: Path, n: int = 7, h: int = 48, w: int = 64) -> Path:
    """A small 25 fps video with smooth moving content (so TV-L1 finds real motion)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for k in range(n):
        v = 128 + 60 * np.sin((x - 1.3 * k) / 5.0) * np.cos((y + 0.7 * k) / 4.0) + 40 * np.sin((x + y) / 9.0)
        frames.append(np.repeat(np.clip(v, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return _make_video(path, frames, [40 * k for k in range(n)], rate=25)


# --- quantisation, grey, JPEG -------------------------------------------------------------------------------------


def _authors_quantize(f: np.float32) -> int:
    """Slow reference of OpenCV's float → uint8 convertTo(alpha = f32(6.4), beta = 128) with an FMA: the exact value
    f·f32(6.4) + 128 (fractions) rounded once to the nearest float32 (ties to even), then rint, then saturate."""
    exact = Fraction(float(f)) * Fraction(float(np.float32(6.4))) + 128
    near = np.float32(float(exact))  # within one float32 ulp of the correctly rounded value
    cands = [near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))]
    dist = [abs(Fraction(float(c)) - exact) for c in cands]
    best = min(dist)
    tied = [c for c, d in zip(cands, dist, strict=True) if d == best]
    v = min(tied, key=lambda c: int(np.float32(c).view(np.uint32)) & 1)  # a tie → the even mantissa
    return min(max(round(Fraction(float(v))), 0), 255)  # round(Fraction): half to even


def test_quantize_flow_rules():
    f = np.array([0.0, 20.0, -20.0, 25.0, -1e9, 0.078125, 0.234375, -0.078125, 19.9, -19.9], np.float32)
    q = video.quantize_flow(np.stack([f, -f], axis=-1)[None])
    assert q.dtype == np.uint8 and q.shape == (1, 10, 2)
    # zero → 128; ±20 saturates; 6.4·f + 128 = 128.5 → 128 and 129.5 → 130 (half to even); 127.5 → 128
    assert q[0, :, 0].tolist() == [128, 255, 0, 255, 0, 128, 130, 128, 255, 1]
    assert q[0, :, 1].tolist() == [128, 0, 255, 0, 255, 128, 126, 128, 1, 255]
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 15, (9, 11, 2)).astype(np.float32)
    # values whose f·f32(6.4) + 128 lies within a few float32 ulps of a .5 boundary, where float64 6.4 (the earlier
    # formula) and the authors' float32 arithmetic disagree
    k = rng.integers(-130, 130, 400) + 0.5
    near = (k / np.float32(6.4)).astype(np.float32)
    near = np.concatenate([np.nextafter(near, np.float32(np.inf)), near, np.nextafter(near, np.float32(-np.inf))])
    for x in (flow.ravel(), near):
        assert video.quantize_flow(x).tolist() == [_authors_quantize(v) for v in x]
    for x in (flow, np.stack([f, -f], axis=-1)[None]):  # torch tensors (tvl1.py's path): the same bytes
        q_t = video.quantize_flow(torch.from_numpy(x))
        assert q_t.dtype == torch.uint8 and np.array_equal(q_t.numpy(), video.quantize_flow(x))


def test_to_gray_weights():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ref = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    g = video.to_gray(rgb)
    assert g.shape == (40, 50) and g.dtype == np.uint8
    assert np.abs(g - ref).max() <= 0.51  # nearest, up to OpenCV's 14-bit fixed-point weights:
    fixed = (rgb.astype(np.int64) @ np.array([9798, 19235, 3735]) + (1 << 14)) >> 15  # 0.29901, 0.58701, 0.11398
    np.testing.assert_array_equal(g, fixed)
    assert video.to_gray(np.full((2, 2, 3), [255, 0, 0], np.uint8))[0, 0] == 76  # weights are on R, G, B in order


def test_jpeg_roundtrip_matches_pil():
    from io import BytesIO

    from PIL import Image

    rgb = cv2.resize(np.random.default_rng(2).integers(0, 256, (12, 16, 3), dtype=np.uint8), (64, 48))
    data = video._encode_jpeg(rgb)
    out = video.jpeg_roundtrip(rgb)
    assert out.shape == rgb.shape and not np.array_equal(out, rgb) and np.abs(out.astype(int) - rgb).mean() < 8
    np.testing.assert_array_equal(out, np.asarray(Image.open(BytesIO(data)).convert("RGB")))
    gray = rgb[..., 1]
    np.testing.assert_array_equal(video.jpeg_roundtrip(gray), np.asarray(Image.open(BytesIO(video._encode_jpeg(gray)))))
    assert np.array_equal(video.jpeg_roundtrip(rgb), out)  # deterministic


# --- 25 fps resampling ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_CASES))
def test_resample_indices_matches_ffmpeg(name):
    times, dur = _CASES[name]
    idx = video.resample_indices([Fraction(t, 1000) for t in times], 25, [Fraction(dur, 1000)] * len(times))
    assert idx.tolist() == _FFMPEG[name]


def test_resample_indices_simple_rates():
    assert video.resample_indices([i / 25 for i in range(10)]).tolist() == list(range(10))
    assert video.resample_indices([i / 12.5 for i in range(4)]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert video.resample_indices([0.0]).tolist() == [0]
    assert video.resample_indices([]).tolist() == []
    # first frame at 0.2 s: cfr repeats it over the 5 ticks before; vscfr (single-stream input) starts there
    late = [0.2 + i / 25 for i in range(3)]
    assert video.resample_indices(late).tolist() == [0] * 6 + [1, 2]
    assert video.resample_indices(late, skip_initial_dups=True).tolist() == [0, 1, 2]


def test_iter_frames_resamples_like_ffmpeg(tmp_path):
    times, _ = _CASES["irregular"]
    path = _make_video(tmp_path / "irregular.mkv", [_index_image(i) for i in range(len(times))], times)
    frames = list(video.iter_frames(path, short_side=48))  # 64×48: no resizing
    assert [_read_index(f) for f in frames] == _FFMPEG["irregular"]
    assert frames[0].dtype == np.uint8 and frames[0].shape == (48, 64, 3)
    info = video.probe_video(path)
    assert info.num_frames_25 == len(frames) and (info.width, info.height) == (64, 48)


def test_resize_rule(tmp_path):
    assert video.resized_size(320, 240) == (341, 256) and video.resized_size(240, 320) == (256, 341)
    assert video.resized_size(340, 256) == (340, 256) and video.resized_size(100, 100, 64) == (64, 64)
    imgs = [cv2.resize(_index_image(i), (80, 60), interpolation=cv2.INTER_NEAREST) for i in range(3)]
    path = _make_video(tmp_path / "r.mkv", imgs, [0, 40, 80], rate=25)
    frames = list(video.iter_frames(path, short_side=32))
    decoded = [f.to_ndarray(format="rgb24") for f in av.open(str(path)).decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (32, 42, 3)
    for f, d in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(f, cv2.resize(d, (42, 32), interpolation=cv2.INTER_LINEAR))


# --- real videos: frame bookkeeping (decoding only) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, src_fps, n_ffmpeg, n_snippets",  # n_ffmpeg: frames of `ffmpeg -i VIDEO -r 25` (9.0.2, frame-by-frame equal)
    [
        ("kinetics_arm_wrestling.mp4", 28.0, 252, 15),
        ("v_ZNVhz7ctTq0.mp4", 30.0, 352, 21),
        ("v_GGSY1Qvo990.mp4", 19.62, 452, 28),
    ],
)
def test_real_video_frame_counts(real_media, monkeypatch, name, src_fps, n_ffmpeg, n_snippets):
    path = real_media / "videos" / name
    info = video.probe_video(path)
    assert info.fps == pytest.approx(src_fps, abs=0.005)
    frames = list(video.iter_frames(path))
    n = len(frames)
    assert n == info.num_frames_25 == n_ffmpeg
    assert abs(n - info.duration_s * 25) <= 2  # -r drops only past 1.1 ticks of lag: ≤ 2 extra frames at the end
    assert all(f.shape[0] == 256 and f.dtype == np.uint8 for f in frames[:3])
    # N frames → N-1 (rgb, flow) pairs → (N-1)//16 snippets; flow replaced by a cheap stand-in (counts only)
    monkeypatch.setattr(tvl1, "tvl1", lambda a, b, **kw: torch.zeros((len(a), 2, *a.shape[1:])))
    pairs = list(video.rgb_flow_frames(path, jpeg=False, workers=1))
    assert len(pairs) == n - 1 and len(pairs) // 16 == n_snippets  # the windows data/README.md counts
    assert all(np.array_equal(r, f) for (r, _), f in zip(pairs, frames[:-1], strict=True))
    assert all(fl.shape == (*frames[0].shape[:2], 2) and (fl == 128).all() for _, fl in pairs[:5])


# --- optical flow ---------------------------------------------------------------------------------------------------


def test_tvl1_recovers_subpixel_translation(tmp_path):
    u, v = 1.5, -0.75  # px per frame
    h, w = 128, 160
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)

    def pattern(k: int) -> np.ndarray:
        xs, ys = x - u * k, y - v * k  # content moves by (u, v) per frame
        val = 128 + 45 * np.sin(xs / 3.1) * np.cos(ys / 4.3) + 35 * np.sin((xs + 2 * ys) / 7.7) + 25 * np.cos(xs / 11)
        return np.repeat(np.clip(np.rint(val), 0, 255).astype(np.uint8)[..., None], 3, axis=2)

    path = _make_video(tmp_path / "move.mkv", [pattern(k) for k in range(3)], [0, 40, 80], rate=25)
    frames = list(video.iter_frames(path, short_side=128))
    assert len(frames) == 3
    g0, g1 = video.to_gray(frames[0]), video.to_gray(frames[1])
    opencv = video.tvl1_flow(g0, g1)  # OpenCV's CPU class ([H, W, 2])
    port = tvl1.tvl1(g0, g1).permute(1, 2, 0).numpy()  # the default: tvl1.py ([2, H, W])
    for flow in (opencv, port):
        assert flow.dtype == np.float32 and flow.shape == (h, w, 2)
        inner = flow[16:-16, 16:-16].reshape(-1, 2)
        assert np.abs(np.median(inner, axis=0) - [u, v]).max() < 0.1
    for method, flow in (("opencv", opencv), ("tvl1", port)):
        first = next(video.rgb_flow_frames(path, short_side=128, jpeg=False, workers=1, flow=method))
        np.testing.assert_array_equal(first[0], frames[0])
        np.testing.assert_array_equal(first[1], video.quantize_flow(flow))


@pytest.mark.parametrize("flow", ["tvl1", "opencv"])
def test_flow_workers_match_single_process(tmp_path, monkeypatch, flow):
    path = _tiny_video(tmp_path / "tiny.mkv", n=7)
    monkeypatch.setattr(video, "_CHUNK", 2)  # opencv: several chunks in flight (tvl1: batches of 4 pairs per thread)
    one = list(video.rgb_flow_frames(path, short_side=48, workers=1, flow=flow))
    two = list(video.rgb_flow_frames(path, short_side=48, workers=2, flow=flow))
    assert len(one) == len(two) == 6
    for (r1, f1), (r2, f2) in zip(one, two, strict=True):
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(f1, f2)
    assert any((f != 128).any() for _, f in one)  # the video moves: the flow is not trivially zero


# --- two-stage folders, CLI, bad input ------------------------------------------------------------------------------


def test_frame_folders_roundtrip_and_resume(tmp_path):
    path = _tiny_video(tmp_path / "clip.mkv", n=5)
    out = tmp_path / "frames"
    folder = video.write_frame_folders(path, out, short_side=48, workers=1)
    assert folder == out / "clip"
    assert sorted(p.name for p in (folder / "rgb").iterdir()) == [f"{k:06d}.jpg" for k in range(1, 5)]
    back = list(video.read_frame_folders(folder))
    direct = list(video.rgb_flow_frames(path, short_side=48, jpeg=True, workers=1))
    assert len(back) == len(direct) == 4
    for (r1, f1), (r2, f2) in zip(back, direct, strict=True):
        assert r1.dtype == f1.dtype == np.uint8 and r1.shape == (48, 64, 3) and f1.shape == (48, 64, 2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(f1, f2)
    # a tool that kept all N rgb frames: the extra last one is dropped
    (folder / "rgb" / "000005.jpg").write_bytes((folder / "rgb" / "000004.jpg").read_bytes())
    assert len(list(video.read_frame_folders(folder))) == 4
    # resume: a finished folder is left alone
    stamp = folder / "rgb" / "000001.jpg"
    before = stamp.stat().st_mtime_ns
    video.write_frame_folders(path, out, short_side=48, workers=1)
    assert stamp.stat().st_mtime_ns == before
    # a crash mid-video leaves only a hidden temp folder: the next run redoes the video and removes it
    path2 = _tiny_video(tmp_path / "clip2.mkv", n=4)
    tmp = out / ".clip2.tmp"
    (tmp / "rgb").mkdir(parents=True)
    (tmp / "rgb" / "000001.jpg").write_bytes(b"half")
    video.write_frame_folders(path2, out, short_side=48, workers=1)
    assert not tmp.exists() and len(list(video.read_frame_folders(out / "clip2"))) == 3


def test_frames_cli_reports_bad_video(tmp_path, capsys):
    vids = tmp_path / "videos"
    vids.mkdir()
    _tiny_video(vids / "good.mkv", n=3)
    (vids / "bad.mp4").write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    argv = ["--video_dir", str(vids), "--output_dir", str(tmp_path / "out"), "--workers", "1", "--short_side", "48"]
    assert video.frames_cli(argv) == 1
    out = capsys.readouterr()
    assert "bad.mp4" in out.out + out.err and "failed" in out.out
    assert len(list(video.read_frame_folders(tmp_path / "out" / "good"))) == 2
    assert not (tmp_path / "out" / "bad").exists()
    (vids / "bad.mp4").unlink()
    assert video.frames_cli(argv) == 0  # rerun: the finished video is skipped
    assert video.frames_cli([*argv[:-4], "--shard", "2/2"]) == 2


def test_bad_video_files_raise_one_line(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = tmp_path / "audio.mkv"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        c.mux(s.encode(frame))
        c.mux(s.encode())
    for path, what in [(corrupt, ""), (empty, "empty"), (audio, "no video stream"), (tmp_path / "nope.mp4", "found")]:
        for fn in (lambda p: list(video.iter_frames(p)), video.probe_video, lambda p: list(video.rgb_flow_frames(p))):
            with pytest.raises(InputError) as e:
                fn(path)
            msg = str(e.value)
            assert msg.startswith(str(path)) and "\n" not in msg and what in msg

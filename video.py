"""Frames for feature extraction (method §12.1–4): 25 fps decoding, resizing, TV-L1 optical flow, quantisation, JPEG.

The authors' recipe (`ffmpeg -r 25`, OpenCV built with CUDA, a denseFlow_GPU binary) made `pip install`-able:
PyAV (its wheels bundle FFmpeg) decodes, and the flow is `tvl1.py`, this project's exact port of the OpenCV CUDA
TV-L1 the authors ran (numba on CPU, torch on a GPU): `flow="tvl1"`, the default. `flow="opencv"` uses OpenCV
contrib's CPU DualTVL1 instead (a different algorithm in the details; docs/video.md measures the difference). See
docs/video.md for the exact rules and every known difference from the authors' tools.

One-command path: `rgb_flow_frames(video)` → (rgb [H, W, 3], flow [H, W, 2]) pairs, uint8, in order.
Two-stage path (the authors'): `write_frame_folders(video, out)` then `read_frame_folders(out / video_name)`;
both paths give byte-identical arrays, hence identical features.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from utils import (
    InputError,
    Progress,
    StageClock,
    parse_shard,
    prepare_output_dir,
    resolve_device,
    run_cli,
    safe_file_name,
    warn_once,
)

FLOW_BOUND = 20.0  # method §12.4: quantisation scale 256/(2·20) = 6.4 (saturation near ±20 px)
JPEG_QUALITY = 95  # cv2.imwrite's default, as the authors wrote their frames
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".wmv", ".3gp")

FLOW_METHODS = ("tvl1", "opencv")  # tvl1.py's port of OpenCV's CUDA TV-L1 (default); OpenCV's CPU DualTVL1
FLOW_BATCH_GPU = 128  # frame pairs per TV-L1 call on a GPU (≈ 25 MB each at 341×256, estimated; not measured)

# method §12.3: the CUDA TV-L1 parameters the authors used, mapped onto OpenCV's CPU DualTVL1OpticalFlow.
TVL1_PARAMS = dict(
    tau=0.25,
    lambda_=0.15,
    theta=0.3,
    nscales=5,
    warps=5,
    epsilon=0.01,
    innnerIterations=300,  # (sic, OpenCV's keyword) CUDA "iterations" = inner iterations per warp
    outerIterations=1,  # the CUDA loop has no outer loop (its outer loop only hosts median filtering on CPU)
    scaleStep=0.8,
    gamma=0.0,
    medianFiltering=1,  # 1 = no median filtering (CPU applies medianBlur only when > 1)
    useInitialFlow=False,
)


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` reads without decoding: source fps, duration, frames after resampling, source size."""

    fps: float
    duration_s: float
    num_frames_25: int  # frames `iter_frames(path, fps=25)` yields (N), from packet timestamps
    width: int
    height: int


# --- 1. constant frame rate, the way `ffmpeg -i VIDEO -r 25 OUT` does -------------------------------------------------
# ffmpeg's CLI does not use the `fps` filter for an output `-r`: its encoder-side "video sync" (mode cfr, chosen for
# mp4/jpg outputs) walks the input frames once and decides, per frame, how many output ticks it fills. A frame is
# dropped only when the output lags the input by more than 1.1 ticks, so for 30 → 25 fps the output runs ~1–2 frames
# behind the input and ends with ~2 extra frames. Reproduced from fftools (ffmpeg ≥ 6: `video_sync_process`) and
# checked frame by frame against the ffmpeg 9.0 binary (tests/test_video.py records its output).


def _rescale(a: int, b: Fraction, c: Fraction) -> int:
    """av_rescale_q(a, b, c): a·b/c rounded to nearest, halves away from zero."""
    x = a * b / c
    return int(np.sign(x)) * int(abs(x) + Fraction(1, 2)) if x else 0


class _CfrSync:
    """ffmpeg CLI's `-vsync cfr` state machine for one output stream at `fps` (time base 1/fps).

    `push(t, dur)` takes one decoded frame (start time and duration, seconds relative to the file start) and returns
    (n_prev, n): the frame fills the next n output ticks, except the first n_prev, which repeat the previous frame.
    `flush()` gives the number of times the last frame is repeated at the end of the stream.
    """

    def __init__(self, fps: Fraction, skip_initial_dups: bool = False):
        self.fps = fps
        # adjust_frame_pts_to_encoder_tb: timestamps are converted with extra fractional bits, then nudged by 2^-17
        self.scale = 1 << min(max(29 - (fps.numerator.bit_length() - 1), 0), 16)
        self.vscfr = skip_initial_dups  # ffmpeg picks "vscfr" when the input file has a single stream
        self.next_pts = 0  # next output tick
        self.frame_number = 0  # output frames so far
        self.prev_hist = [0, 0, 0]

    def push(self, t: Fraction, dur: Fraction) -> tuple[int, int]:
        sync_ipts = _rescale(1, t * self.fps, Fraction(1, self.scale)) / self.scale
        sync_ipts += (1.0 if sync_ipts > 0 else -1.0) / (1 << 17)  # FFSIGN(0) is -1
        duration = float(dur * self.fps)
        delta0 = sync_ipts - self.next_pts  # drift between the input frame and where it would fall in the output
        delta = delta0 + duration
        nb_prev, nb = 0, 1
        if delta0 < 0 < delta:  # frame starts before the next tick but overlaps it: clip it
            sync_ipts = float(self.next_pts)
            duration += delta0
            delta0 = 0.0
        if self.vscfr and self.frame_number == 0 and delta0 >= 0.5:  # do not fill the ticks before the first frame
            delta, delta0 = duration, 0.0
            self.next_pts = _llrint(sync_ipts)
        if delta < -1.1:
            nb = 0
        elif delta > 1.1:
            nb = _llrint(delta)
            if delta0 > 1.1:
                nb_prev = _llrint(delta0 - 0.6)
        self.prev_hist = [nb_prev] + self.prev_hist[:2]
        self.next_pts += nb
        self.frame_number += nb
        return min(nb_prev, nb), nb

    def flush(self) -> int:
        n = sorted(self.prev_hist)[1]  # mid_pred of the last three "repeat previous" counts
        self.next_pts += n
        self.frame_number += n
        return n


def _llrint(x: float) -> int:
    """C llrint/lrintf in the default rounding mode: nearest, halves to even."""
    return int(np.rint(x))


def _as_fraction(x: float | Fraction) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(x)


def _fps_fraction(fps: float) -> Fraction:
    if not fps > 0:
        raise InputError(f"fps {fps}: must be positive")
    return Fraction(fps).limit_denominator(1001 * 1000)


def resample_indices(
    timestamps: Sequence[float | Fraction],
    fps: float = 25.0,
    durations: Sequence[float | Fraction] | None = None,
    *,
    skip_initial_dups: bool = False,
) -> np.ndarray:
    """Source frame index for every output frame of `ffmpeg -r fps` (CLI video sync "cfr") → int64 [N_out].

    timestamps: [N] presentation times (s) of the decoded frames in order, relative to the file start.
    durations: [N] frame durations (s); default: the gap to the next frame, the last one repeating its predecessor's.
    skip_initial_dups: ffmpeg's "vscfr" (input file with one stream): the output starts at the first frame instead of
    repeating it to fill the ticks between 0 and its timestamp.
    Frames are dropped when the output lags by > 1.1 ticks and repeated when a frame spans > 1.1 ticks.
    """
    ts = [_as_fraction(t) for t in timestamps]
    if not ts:
        return np.zeros(0, dtype=np.int64)
    if durations is None:
        gaps = [b - a for a, b in zip(ts[:-1], ts[1:], strict=False)]
        durs = gaps + [gaps[-1] if gaps else 1 / _fps_fraction(fps)]
    else:
        durs = [_as_fraction(d) for d in durations]
    sync = _CfrSync(_fps_fraction(fps), skip_initial_dups)
    out: list[int] = []
    for j, (t, d) in enumerate(zip(ts, durs, strict=True)):
        n_prev, n = sync.push(t, d)
        out += [j - 1] * n_prev + [j] * (n - n_prev) if j else [j] * n
    out += [len(ts) - 1] * sync.flush()
    return np.asarray(out, dtype=np.int64)


# --- decoding ---------------------------------------------------------------------------------------------------------


def _open(path: str | os.PathLike) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a video file → (container, first video stream); InputError (one line) when that is impossible."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a readable video ({_one_line(e)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: no video stream")
    return container, container.streams.video[0]


def _one_line(e: BaseException) -> str:
    return " ".join(str(getattr(e, "strerror", None) or e).split()) or type(e).__name__


def resized_size(width: int, height: int, short_side: int = 256) -> tuple[int, int]:
    """(width, height) after method §12.2: shorter side → short_side, longer → floor(long·short_side/short)."""
    if width <= height:
        return short_side, height * short_side // width
    return width * short_side // height, short_side


def _frame_duration(dur: int, ts_diff: int, rate: Fraction | None, tb: Fraction, last_est: int) -> int:
    """A frame's duration in time-base units as ffmpeg's CLI takes it: the container's, else the gap since the previous
    frame, else 1/frame rate, else the previous estimate (checked against ffmpeg 9.0 on mp4, mkv and avi files)."""
    if dur > 0:
        return dur
    if ts_diff > 0:
        return ts_diff
    if rate and (d := _rescale(1, 1 / rate, tb)) > 0:
        return d
    return max(last_est, 1)


class _Timeline:
    """`-r fps` for one stream's frames (or packets), in order: ffmpeg's timestamps and durations → `_CfrSync`.

    `iter_frames` (decoded frames) and `probe_video` (packets) share it, so they count the same output frames.
    """

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float):
        self.tb = stream.time_base
        self.rate = stream.codec_context.framerate or stream.average_rate
        self.start = _rescale(container.start_time or 0, Fraction(1, 1_000_000), self.tb)  # ffmpeg shifts to start at 0
        self.sync = _CfrSync(_fps_fraction(fps), skip_initial_dups=len(container.streams) == 1)
        self.last_pts: int | None = None
        self.last_est = 1  # the previous frame's duration (time-base units)

    def next_pts(self) -> int:
        """Timestamp for a frame without one: continue from the previous frame."""
        return self.last_pts + self.last_est if self.last_pts is not None else 0

    def push(self, pts: int, dur: int) -> tuple[int, int]:
        """One frame (pts, container duration or 0, time-base units) → `_CfrSync.push`'s (n_prev, n)."""
        ts_diff = pts - self.last_pts if self.last_pts is not None else -1
        self.last_pts, self.last_est = pts, _frame_duration(dur, ts_diff, self.rate, self.tb, self.last_est)
        return self.sync.push((pts - self.start) * self.tb, self.last_est * self.tb)


def iter_frames(path: str | os.PathLike, fps: float = 25.0, short_side: int = 256) -> Iterator[np.ndarray]:
    """Decode `path` at a constant `fps` (method §12.1) and resize (§12.2) → uint8 RGB frames [H, W, 3], streaming.

    Output frame i is the source frame that `ffmpeg -i path -r fps` puts at tick i (see `resample_indices`).
    Frames are converted to RGB by swscale (bicubic chroma upsampling, as OpenCV's VideoCapture does) and resized with
    cv2.resize INTER_LINEAR so that the shorter side is `short_side` and the longer floor(long·short_side/short).
    Memory stays constant (one decoded and one resized frame are kept). Raises InputError (one line naming the file)
    for a missing, empty, unreadable or video-less file, or one that yields no frame.
    """
    container, stream = _open(path)
    stream.thread_type = "AUTO"
    timeline = _Timeline(container, stream, fps)
    size = None

    def rgb(frame: av.VideoFrame) -> np.ndarray:
        img = frame.to_ndarray(format="rgb24", interpolation="BICUBIC")
        return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR) if img.shape[1::-1] != size else img

    prev = prev_img = None  # previous decoded frame and its resized RGB (made only if it is shown)
    n_decoded, first_pts = 0, None
    stated = _stated_length(container, stream)
    try:
        with container:
            for frame in container.decode(stream):
                if frame.pts is None:
                    frame.pts = timeline.next_pts()
                first_pts = frame.pts if first_pts is None else first_pts
                if size is None:
                    size = resized_size(frame.width, frame.height, short_side)
                n_prev, n = timeline.push(frame.pts, frame.duration or 0)
                if n_prev and prev is not None:
                    prev_img = rgb(prev) if prev_img is None else prev_img
                    for _ in range(n_prev):
                        yield prev_img
                img = rgb(frame) if n > n_prev else None
                for _ in range(n - n_prev):
                    yield img
                prev, prev_img = frame, img
                n_decoded += 1
    except av.FFmpegError as e:
        raise InputError(f"{path}: decoding failed after {n_decoded} frames ({_one_line(e)})") from None
    if prev is None:
        raise InputError(f"{path}: no decodable video frame")
    warn_if_truncated(path, stated, n_decoded, float((timeline.last_pts + timeline.last_est - first_pts) * timeline.tb))
    n = timeline.sync.flush()
    if n:
        prev_img = rgb(prev) if prev_img is None else prev_img
        for _ in range(n):
            yield prev_img


def _stated_length(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int, float | None]:
    """What the container says the video stream holds, before decoding → (frames or 0, seconds or None). The
    container's own duration is taken only for a file with no other stream (an audio track may run longer)."""
    seconds = None
    if stream.duration:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration and len(container.streams) == 1:
        seconds = container.duration / av.time_base
    return stream.frames or 0, seconds


def warn_if_truncated(path: str | os.PathLike, stated: tuple[int, float | None], frames: int, seconds: float) -> None:
    """One warning line when decoding ended well before the length the container states (`stated`: frames or 0,
    seconds or None): a half-downloaded file decodes its first part without any error. Well = more than 2 frames
    and 1 % short (or 0.25 s and 1 %, where only a duration is stated); real files end within 2 frames of it."""
    n_stated, s_stated = stated
    if n_stated > 0:
        if n_stated - frames > max(2, 0.01 * n_stated):
            warn_once(
                f"{path}: decoded {frames} of the {n_stated} video frames its container states: the file looks "
                "truncated (half-downloaded?); only the decoded part is used"
            )
    elif s_stated is not None and s_stated - seconds > max(0.25, 0.01 * s_stated):
        warn_once(
            f"{path}: decoded {seconds:.1f} s of the {s_stated:.1f} s of video its container states: the file looks "
            "truncated (half-downloaded?); only the decoded part is used"
        )


def probe_video(path: str | os.PathLike, fps: float = 25.0) -> VideoInfo:
    """Cheap facts about a video from its container and packet timestamps (demuxing, no decoding).

    `num_frames_25` runs the `-r fps` rule on the packet timestamps: it equals the number of frames `iter_frames`
    yields whenever every packet decodes to one frame (true for sane files; a corrupt packet can make it differ).
    """
    container, stream = _open(path)
    with container:
        try:
            pkts = sorted((p.pts, p.duration or 0) for p in container.demux(stream) if p.size and p.pts is not None)
        except av.FFmpegError as e:
            raise InputError(f"{path}: demuxing failed ({_one_line(e)})") from None
        if not pkts:
            raise InputError(f"{path}: no video packets")
        timeline = _Timeline(container, stream, fps)
        n_out = sum(timeline.push(pts, pdur)[1] for pts, pdur in pkts) + timeline.sync.flush()
        end = pkts[-1][0] + timeline.last_est
        duration = float((end - min(p for p, _ in pkts)) * timeline.tb)
        return VideoInfo(
            fps=float(stream.average_rate or (len(pkts) / duration)),
            duration_s=duration,
            num_frames_25=n_out,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
        )


# --- 3. optical flow, 4. quantisation, JPEG ---------------------------------------------------------------------------


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] → uint8 grey [H, W] ≈ round(0.299 R + 0.587 G + 0.114 B).

    OpenCV's RGB2GRAY: fixed-point weights (9798, 19235, 3735)/2^15, rounded; within 0.51 of the float formula.
    """
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


_TVL1 = None


def tvl1_flow(prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
    """OpenCV's CPU TV-L1 prev → next (method §12.3 parameters; `flow="opencv"`) → float32 [H, W, 2] (x, y) in pixels.

    prev_gray, next_gray: uint8 [H, W]. Flow (u, v) at pixel p means prev(p) ≈ next(p + (u, v)).
    """
    global _TVL1
    if _TVL1 is None:
        _TVL1 = cv2.optflow.DualTVL1OpticalFlow_create(**TVL1_PARAMS)
    return _TVL1.calc(prev_gray, next_gray, None)


def quantize_flow(flow, bound: float = FLOW_BOUND):
    """float [..., 2] → uint8 as the authors' conversion computes it (method §12.4, docs/tvl1.md §7).

    OpenCV's `convertTo(CV_8U, alpha, 128)` with alpha = 256/(2·bound) = 6.4: v = f·f32(6.4) + 128 fused into one
    float32 rounding (an FMA on SIMD builds), then round half to even, then saturate to [0, 255]. The product of two
    float32 is exact in float64, so float64 product + 128 rounded to float32 is the FMA (a second rounding in float64
    first can differ only when that sum lies within 2^-53 of a float32 midpoint). numpy arrays or torch tensors
    (any device; the result stays there). Zero flow → 128; no clamp at ±bound before the saturation.
    """
    alpha = float(np.float32(256.0 / (2.0 * bound)))  # f32(6.4) = 6.400000095..., as cvt_32f casts it
    if isinstance(flow, np.ndarray):
        v = (flow.astype(np.float32).astype(np.float64) * alpha + 128.0).astype(np.float32)
        return np.clip(np.rint(v), 0, 255).astype(np.uint8)
    v = (flow.float().double() * alpha + 128.0).float()
    return v.round_().clamp_(0, 255).byte()  # torch.round: half to even, as np.rint


def _encode_jpeg(img: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 RGB [H, W, 3] or grey [H, W] → JPEG bytes, as cv2.imwrite writes them (BGR order in, 4:2:0)."""
    bgr = img[..., ::-1] if img.ndim == 3 else img
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return buf.tobytes()


def _decode_jpeg(data: bytes, gray: bool, name: str = "JPEG") -> np.ndarray:
    """JPEG bytes → uint8 RGB [H, W, 3] (or grey [H, W]) with OpenCV's libjpeg-turbo (ISLOW IDCT, fancy upsampling)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{name}: not a readable JPEG image")
    return img if gray else np.ascontiguousarray(img[..., ::-1])


def jpeg_roundtrip(img: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Encode to JPEG and decode again with OpenCV (what writing frames to disk and reading them back does).

    img: uint8 RGB [H, W, 3] or grey [H, W] → same shape. Matches cv2.imwrite(quality 95) + cv2.imread; PIL's
    Image.open decodes these files to the same bytes (both use libjpeg-turbo's defaults; tested).
    """
    return _decode_jpeg(_encode_jpeg(img, quality), gray=img.ndim == 2)


# --- frame pairs with all cores ---------------------------------------------------------------------------------------

_CHUNK = 4  # flow fields per task: IPC (~ms) is nothing next to TV-L1 (~5 s per pair); small keeps all cores busy
_POOLS: dict[int, cf.ProcessPoolExecutor] = {}


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core beats OpenCV's own threads (measured, docs/video.md)


def _flow_chunk(grays: list[np.ndarray], jpeg: bool) -> list[tuple[bytes, bytes] | np.ndarray]:
    """Quantised flows between consecutive grey frames [G] → G-1 items: (x JPEG, y JPEG) bytes, or uint8 [H, W, 2]."""
    out = []
    for a, b in zip(grays[:-1], grays[1:], strict=False):
        q = quantize_flow(tvl1_flow(a, b))
        out.append((_encode_jpeg(q[..., 0]), _encode_jpeg(q[..., 1])) if jpeg else q)
    return out


def _flow_chunk_single_thread(grays: list[np.ndarray], jpeg: bool) -> list:
    """`_flow_chunk` in this process with OpenCV on one thread (so results match the pool's bit for bit)."""
    n = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return _flow_chunk(grays, jpeg)
    finally:
        cv2.setNumThreads(n)


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    """A process pool reused across videos (workers start once; forkserver: safe next to PyAV's decoder threads)."""
    if workers not in _POOLS:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["video"])  # the server imports numpy/cv2/av/torch once; workers fork from it
        _POOLS[workers] = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    return _POOLS[workers]


@atexit.register
def _shutdown_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


def _pairs(
    path,
    fps: float,
    short_side: int,
    jpeg: bool,
    workers: int | None,
    flow: str = "tvl1",
    device=None,
    clock: StageClock | None = None,
) -> Iterator[tuple]:
    """(rgb item, flow item) for k = 1..N-1: RGB of frame k-1 and the quantised flow k-1 → k.

    With jpeg=True the items are JPEG bytes (rgb, (flow_x, flow_y)); otherwise uint8 arrays. flow: "tvl1" (tvl1.py on
    `device`, `workers` CPU threads) or "opencv" (OpenCV's CPU class on `workers` processes).
    """
    if flow == "tvl1":
        return _tvl1_pairs(path, fps, short_side, jpeg, workers, device, clock)
    if flow == "opencv":
        return _opencv_pairs(path, fps, short_side, jpeg, workers, clock)
    raise ValueError(f"flow {flow!r}: expected one of {', '.join(FLOW_METHODS)}")


def _tvl1_batch(grays: list[np.ndarray], device, threads: int, jpeg: bool) -> list:
    """tvl1.py between consecutive grey frames [G] on `device` → G-1 items: (x JPEG, y JPEG) bytes or uint8 [H, W, 2].

    Quantised on the device; one transfer back per batch (no per-frame sync).
    """
    import torch

    import tvl1

    g = torch.from_numpy(np.stack(grays))
    if device.type == "cuda":
        g = g.pin_memory().to(device, non_blocking=True)
    q = quantize_flow(tvl1.tvl1(g[:-1], g[1:], threads=threads).permute(0, 2, 3, 1)).cpu().numpy()  # [B, H, W, 2]
    return [(_encode_jpeg(f[..., 0]), _encode_jpeg(f[..., 1])) if jpeg else f for f in q]


def _tvl1_pairs(
    path, fps: float, short_side: int, jpeg: bool, workers: int | None, device, clock: StageClock | None
) -> Iterator[tuple]:
    """`_pairs` with tvl1.py: batches of consecutive pairs (FLOW_BATCH_GPU on a GPU, 4 per thread on CPU) go to one
    flow thread while this one decodes the next batch; at most one batch waits behind the running one."""
    import torch

    import tvl1

    device = torch.device(device or "cpu")
    threads = workers or tvl1.available_cores()
    batch = FLOW_BATCH_GPU if device.type != "cpu" else 4 * threads
    flow_thread = cf.ThreadPoolExecutor(1, thread_name_prefix="tvl1")
    try:
        submit = lambda grays: flow_thread.submit(_tvl1_batch, grays, device, threads, jpeg)  # noqa: E731
        yield from _chunked_pairs(path, fps, short_side, jpeg, clock, batch, submit, in_flight=1)
    finally:
        flow_thread.shutdown(wait=False, cancel_futures=True)


def _opencv_pairs(
    path, fps: float, short_side: int, jpeg: bool, workers: int | None, clock: StageClock | None
) -> Iterator[tuple]:
    """`_pairs` with OpenCV's CPU TV-L1: flow chunks of `_CHUNK` consecutive pairs run on `workers` processes
    (default: all cores), at most 2 chunks per worker in flight."""
    workers = workers or os.cpu_count() or 1
    pool = _pool(workers) if workers > 1 else None

    def submit(grays: list[np.ndarray]) -> cf.Future | list:
        return pool.submit(_flow_chunk, grays, jpeg) if pool else _flow_chunk_single_thread(grays, jpeg)

    yield from _chunked_pairs(path, fps, short_side, jpeg, clock, _CHUNK, submit, in_flight=2 * workers)


def _chunked_pairs(
    path,
    fps: float,
    short_side: int,
    jpeg: bool,
    clock: StageClock | None,
    chunk: int,
    submit: Callable[[list[np.ndarray]], cf.Future | list],
    in_flight: int,
) -> Iterator[tuple]:
    """The decoding loop of both flow paths: grey frames go to `submit` in chunks of `chunk` consecutive pairs
    (chunk + 1 frames, the last one shared with the next chunk), which returns their flow items or a future of
    them; the RGB items wait beside them, and pairs come out in order with at most `in_flight` chunks pending."""
    pending: deque[tuple[list, cf.Future | list]] = deque()  # (rgb items, flows or their future) in order
    rgbs: list = []
    grays: list[np.ndarray] = []
    prev = None

    def drain(limit: int) -> Iterator[tuple]:
        while len(pending) > limit:
            items, job = pending.popleft()
            flows = job.result() if isinstance(job, cf.Future) else job
            yield from zip(items, flows, strict=True)

    try:
        frames = iter_frames(path, fps, short_side)
        for img in clock.iterate("decode", frames) if clock else frames:
            if grays:  # the previous frame's RGB is paired with the flow that starts at it
                rgbs.append(_encode_jpeg(prev) if jpeg else prev)
            grays.append(to_gray(img))
            prev = img
            if len(grays) == chunk + 1:
                pending.append((rgbs, submit(grays)))
                rgbs, grays = [], [grays[-1]]
                yield from drain(in_flight)
        if len(grays) > 1:
            pending.append((rgbs, submit(grays)))
        yield from drain(0)
    finally:
        for _, job in pending:
            if isinstance(job, cf.Future):
                job.cancel()


def rgb_flow_frames(
    path: str | os.PathLike,
    *,
    fps: float = 25.0,
    short_side: int = 256,
    jpeg: bool = True,
    workers: int | None = None,
    flow: str = "tvl1",
    device=None,
    clock: StageClock | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rgb uint8 [H, W, 3] of frame k-1, quantised flow uint8 [H, W, 2] of k-1 → k) for k = 1..N-1 (method §12.1–4).

    N decoded frames give N-1 pairs: the last frame's RGB is dropped. jpeg=True applies the authors' JPEG round trip
    (quality 95) to the RGB frame and to each flow component as its own greyscale image, so the arrays equal what
    `read_frame_folders` reads back from `write_frame_folders`. flow="tvl1" (default): tvl1.py on `device` (default
    CPU) with `workers` CPU threads; flow="opencv": OpenCV's CPU class on `workers` processes (1 = in this process).
    Default workers: all cores. The result does not depend on `workers`. `clock` (utils.StageClock) gets the decoding
    time.
    """
    for rgb, flow_item in _pairs(path, fps, short_side, jpeg, workers, flow, device, clock):
        if jpeg:
            rgb = _decode_jpeg(rgb, gray=False)
            flow_item = np.stack([_decode_jpeg(flow_item[0], gray=True), _decode_jpeg(flow_item[1], gray=True)], -1)
        yield rgb, flow_item


# --- the authors' two stages: frame folders ---------------------------------------------------------------------------


def _frame_name(k: int) -> str:
    return f"{k:06d}.jpg"


def write_frame_folders(
    video_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    fps: float = 25.0,
    short_side: int = 256,
    workers: int | None = None,
    progress: bool = False,
    flow: str = "tvl1",
    device=None,
) -> Path:
    """Write `<out_dir>/<video stem>/{rgb,flow_x,flow_y}/000001.jpg …` (k = 1..N-1) → the video's folder.

    rgb/k.jpg is frame k-1 and flow_{x,y}/k.jpg the flow k-1 → k, JPEG quality 95, the same bytes that
    `rgb_flow_frames(jpeg=True)` decodes. Atomic per video (a hidden temp folder renamed at the end) and resumable:
    a finished folder is skipped, a temp folder left by a crash is removed and redone. InputError for a bad video.
    progress=True shows per-frame progress (utils.Progress). flow, device, workers: as `rgb_flow_frames`.
    """
    video_path = Path(video_path)
    final = Path(out_dir) / safe_file_name(video_path.stem, video_path.parent, "video file name")
    if final.is_dir():
        return final
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        dirs = [tmp / d for d in ("rgb", "flow_x", "flow_y")]
        for d in dirs:
            d.mkdir(parents=True)
        k = 0
        pairs = _pairs(video_path, fps, short_side, True, workers, flow, device)
        if progress:
            total = probe_video(video_path, fps).num_frames_25 - 1
            pairs = Progress(pairs, total=total, desc=video_path.name, unit="frame", leave=False)
        for k, (rgb, (fx, fy)) in enumerate(pairs, start=1):
            for d, data in zip(dirs, (rgb, fx, fy), strict=True):
                (d / _frame_name(k)).write_bytes(data)
        if k == 0:
            raise InputError(f"{video_path}: fewer than 2 frames at {fps:g} fps, no optical flow")
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_frame_folders(video_dir: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Read `write_frame_folders` output back → (rgb uint8 [H, W, 3], flow uint8 [H, W, 2]) pairs in order.

    Frames are ordered by their number. An rgb folder with one frame more than the flow folders (tools that keep all N
    frames) has its last frame dropped, as method §12.3 does; any other count mismatch or a gap is an InputError.
    """
    video_dir = Path(video_dir)
    lists = []
    for sub in ("rgb", "flow_x", "flow_y"):
        d = video_dir / sub
        if not d.is_dir():
            raise InputError(f"{d}: frame folder not found")
        try:
            files = sorted(d.glob("*.jpg"), key=lambda p: int(p.stem))
        except ValueError:
            raise InputError(f"{d}: frame names must be numbers (000001.jpg, ...)") from None
        if [int(p.stem) for p in files] != list(range(1, len(files) + 1)):
            raise InputError(f"{d}: frames are not numbered 1..{len(files)} without gaps")
        lists.append(files)
    rgb, fx, fy = lists
    if len(fx) != len(fy) or len(rgb) not in (len(fx), len(fx) + 1):
        raise InputError(f"{video_dir}: {len(rgb)} rgb, {len(fx)} flow_x, {len(fy)} flow_y frames do not match")
    for r, x, y in zip(rgb, fx, fy, strict=False):
        flow = np.stack([_decode_jpeg(x.read_bytes(), True, str(x)), _decode_jpeg(y.read_bytes(), True, str(y))], -1)
        yield _decode_jpeg(r.read_bytes(), False, str(r)), flow


def frames_cli(argv: list[str] | None = None) -> int:
    """`python dataset.py --video_dir V --output_dir O [--flow tvl1|opencv] [--device D] [--workers N] [--shard I/N]`
    → exit code (0 ok, 1 some failed).

    The authors' first stage: every video in V (sorted; shard I/N takes every N-th from I) →
    O/<video>/{rgb,flow_x,flow_y}/*.jpg. Finished videos are skipped, so an interrupted run resumes. A bad video is
    reported and skipped.
    """
    parser = argparse.ArgumentParser(description=frames_cli.__doc__.split("\n\n")[1])
    parser.add_argument("--video_dir", required=True, help="folder of videos (" + " ".join(VIDEO_EXTENSIONS) + ")")
    parser.add_argument("--output_dir", required=True, help="where <video>/{rgb,flow_x,flow_y}/ folders go")
    parser.add_argument(
        "--flow", choices=FLOW_METHODS, default="tvl1", help="tvl1 (default): the authors' CUDA TV-L1 ported; opencv"
    )
    parser.add_argument("--device", default="auto", help="where tvl1 runs: auto (CUDA if available), cpu, cuda:1 ...")
    parser.add_argument("--workers", type=int, default=None, help="CPU threads (tvl1) or processes (opencv); all cores")
    parser.add_argument("--shard", default="0/1", help="I/N: process videos I, I+N, I+2N, ... of the sorted list")
    parser.add_argument("--fps", type=float, default=25.0, help="constant frame rate (the method: 25)")
    parser.add_argument("--short_side", type=int, default=256, help="shorter side after resizing (the method: 256)")
    args = parser.parse_args(argv)
    return run_cli(lambda: _write_all_frame_folders(args))


def _write_all_frame_folders(args: argparse.Namespace) -> int:
    """frames_cli's body: flag checks (InputError → exit 2), then every video of the shard; 1 if any failed."""
    shard, nshards = parse_shard(args.shard)
    video_dir = Path(args.video_dir)
    if not video_dir.is_dir():
        raise InputError(f"--video_dir {video_dir}: folder not found")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be >= 1")
    device = resolve_device(args.device)
    videos = sorted(
        p for p in video_dir.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and p.name[0] != "."
    )
    videos = videos[shard::nshards]
    done, skipped, failed, n_frames = [], [], [], 0
    out_dir = Path(args.output_dir)
    # Held for this run (utils.claim_output_dir): only shards of one job (same videos, flow, frame rate, size and
    # shard count) share the folder, each shard once.
    job = {"videos": os.path.realpath(video_dir), "flow": args.flow, "fps": args.fps, "short": args.short_side}
    job_key = hashlib.sha1(json.dumps({**job, "shards": nshards}, sort_keys=True).encode()).hexdigest()[:16]
    prepare_output_dir(out_dir, "--output_dir", job=job_key, part=f"{shard}/{nshards}")
    t0 = time.perf_counter()
    shown = Progress(videos, desc="videos", unit="video")
    for v in shown:
        if (out_dir / v.stem).is_dir():
            skipped.append(v)
            continue
        try:
            folder = write_frame_folders(
                v, out_dir, fps=args.fps, short_side=args.short_side, workers=args.workers, progress=True,
                flow=args.flow, device=device,
            )  # fmt: skip
            done.append(v)
            n_frames += sum(1 for _ in (folder / "flow_x").iterdir())
        except InputError as e:
            shown.write(f"failed: {e}")
            failed.append(str(e))
        except Exception as e:  # a broken file must not stop a long run; it is listed in the summary
            msg = f"{v}: {type(e).__name__}: {_one_line(e)}"
            shown.write(f"failed: {msg}")
            failed.append(msg)
    dt = time.perf_counter() - t0
    print(f"\n{'videos':<10}{'count':>7}\n{'written':<10}{len(done):>7}   {n_frames} frame pairs in {dt:.0f} s")
    print(f"{'existing':<10}{len(skipped):>7}\n{'failed':<10}{len(failed):>7}")
    for msg in failed:
        print(f"  {msg}")
    return 1 if failed else 0

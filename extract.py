"""Videos → I3D features in one command, the way the authors made theirs (method §12).

    python extract.py --video_dir VIDEOS --output_dir FEATURES --rgb_weights rgb_imagenet.pt \\
        --flow_weights flow_imagenet.pt [--device auto] [--flow tvl1|opencv] [--workers N] [--batch_size 8] \\
        [--shard I/N] [--no_jpeg]

writes `<output_dir>/<video>_rgb.npy` and `<video>_flow.npy`, float32 [n_f // 16, 1024]. Give only one of the
weights files to extract only that modality. The authors' two-stage interface reads the frame folders that
`python dataset.py` (video.frames_cli) writes:

    python extract.py --mode rgb|flow --input_dir FRAMES --output_dir FEATURES --weights W.pt

Both paths give identical features. Runs resume (finished videos are skipped), split with `--shard I/N` or under
`torchrun --nproc_per_node G extract.py ...` (each rank its own shard and GPU), and report bad videos at the end
instead of stopping.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i3d import CROP, FEATURE_DIM, WEIGHTS_HELP, InceptionI3d, center_crop, fp32_convolutions, load_i3d, to_i3d_input
from utils import (
    InputError,
    OutputError,
    Progress,
    StageClock,
    atomic_np_save,
    parse_shard,
    prepare_output_dir,
    resolve_device,
    run_cli,
    safe_file_name,
)

SNIPPET = 16  # frames per snippet (method §12.6)
MODALITIES = ("rgb", "flow")


# --- one video ---------------------------------------------------------------------------------------------------


class SnippetRunner:
    """Streams the frames of one modality through I3D without holding the video.

    `add(frame)` centre-crops a uint8 frame [H, W, C] into a buffer of `batch_size` snippets; a full buffer goes to
    the device as uint8 and through I3D in one batch. `finish()` → float32 [n_f // 16, 1024], one row per snippet
    [16i, 16i + 16); trailing frames are dropped. Features stay on the device until then (no per-batch sync, so
    decoding overlaps the GPU).
    """

    def __init__(self, net: InceptionI3d, device: torch.device, batch_size: int = 8) -> None:
        self.net, self.device = net, torch.device(device)
        self.buf: np.ndarray | None = None  # [batch_size * 16, 224, 224, C] uint8, allocated on the first frame
        self.size, self.count = batch_size * SNIPPET, 0
        self.outputs: list[torch.Tensor] = []

    def add(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != self.net.in_channels or frame.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames [H, W, {self.net.in_channels}], got {frame.dtype} {frame.shape}")
        if self.buf is None:
            self.buf = np.empty((self.size, CROP, CROP, frame.shape[2]), np.uint8)
        self.buf[self.count] = center_crop(frame)
        self.count += 1
        if self.count == self.size:
            self._flush()

    def _flush(self) -> None:
        n = self.count // SNIPPET
        if n:
            x = torch.from_numpy(self.buf[: n * SNIPPET])
            if self.device.type == "cuda":  # pinned copy: the buffer may be refilled while the transfer runs
                x = x.pin_memory().to(self.device, non_blocking=True)
            x = x.view(n, SNIPPET, CROP, CROP, -1)
            with torch.inference_mode(), fp32_convolutions():
                self.outputs.append(self.net.extract_features(to_i3d_input(x)))  # [n, 1024]
        self.count = 0

    def finish(self) -> np.ndarray:
        self._flush()
        if not self.outputs:
            return np.zeros((0, FEATURE_DIM), np.float32)
        return torch.cat(self.outputs).float().cpu().numpy()


def _drop_last(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """All frames but the last: N decoded frames give N-1 RGB frames, as many as flow fields (method §12.3)."""
    it = iter(frames)
    prev = next(it, None)
    for frame in it:
        yield prev
        prev = frame


def run_frames(
    pairs: Iterable[tuple[np.ndarray | None, np.ndarray | None]],
    rgb_net: InceptionI3d | None,
    flow_net: InceptionI3d | None,
    device: torch.device,
    batch_size: int = 8,
    progress: Progress | None = None,
    clock: StageClock | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(rgb [H, W, 3], flow [H, W, 2]) uint8 frame pairs → (rgb [L, 1024] | None, flow [L, 1024] | None).

    A modality whose net is None is not computed (its frames may be None). `clock` gets the I3D time as "i3d".
    """
    clock = clock or StageClock()
    runners = [SnippetRunner(net, device, batch_size) if net is not None else None for net in (rgb_net, flow_net)]
    for frame_pair in pairs:
        with clock("i3d"):  # cropping and the batched forward passes (on a GPU: what decoding does not hide)
            for runner, frame in zip(runners, frame_pair, strict=True):
                if runner is not None:
                    runner.add(frame)
        if progress is not None:
            progress.update()
    with clock("i3d"):
        rgb_feats, flow_feats = (r.finish() if r is not None else None for r in runners)
    return rgb_feats, flow_feats


def extract_video(
    video_path: str | os.PathLike,
    rgb_net: InceptionI3d | None,
    flow_net: InceptionI3d | None,
    device: torch.device | str,
    *,
    batch_size: int = 8,
    jpeg: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
    flow: str = "tvl1",
    clock: StageClock | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One video → (rgb [L, 1024], flow [L, 1024]) float32, L = (N - 1) // 16 for N frames decoded at 25 fps.

    Nets come from `i3d.load_i3d(...).to(device)`; pass None for a modality to skip it (RGB alone needs no optical
    flow and is much faster). `jpeg`: round-trip frames through JPEG (quality 95) like the authors' frame folders.
    `flow`: "tvl1" (the port of the authors' CUDA TV-L1, on `device`) or "opencv" (OpenCV's CPU class). `workers`:
    TV-L1 CPU threads or processes (video.py's default when None). Raises InputError if the video gives no snippet.
    `clock` (utils.StageClock) gets where the time went: "decode" (decoding, resizing), "flow" (TV-L1 and the JPEG
    round trips, as far as the flow threads/processes did not keep up) and "i3d".
    """
    import video  # here, not at the top: I3D-only users (bench on a GPU box) need no decoder libraries

    if rgb_net is None and flow_net is None:
        raise ValueError("extract_video needs at least one of rgb_net, flow_net")
    device = torch.device(device)
    clock = clock or StageClock()
    if flow_net is not None:  # decoding is timed inside, so "flow" is the rest of producing a pair
        frames = video.rgb_flow_frames(video_path, jpeg=jpeg, workers=workers, flow=flow, device=device, clock=clock)
        pairs = clock.iterate("flow", frames)
    else:  # RGB alone: the same frames rgb_flow_frames pairs with flow (last one dropped, same JPEG round trip)
        frames = _drop_last(video.iter_frames(video_path))
        pairs = clock.iterate("decode", ((video.jpeg_roundtrip(f) if jpeg else f, None) for f in frames))
    rgb_feats, flow_feats = run_frames(pairs, rgb_net, flow_net, device, batch_size, progress, clock)
    n = len(rgb_feats if rgb_feats is not None else flow_feats)
    if n == 0:
        raise InputError(f"{video_path}: fewer than {SNIPPET + 1} frames at 25 fps, too short for one snippet")
    return rgb_feats, flow_feats


# --- many videos: resume, shards, failures ---------------------------------------------------------------------


@dataclass
class Job:
    """One video to extract: `source` is a video file (one-command) or a frame folder (two-stage)."""

    name: str
    source: Path


@dataclass
class Result:
    name: str
    status: str  # "extracted" | "skipped" | "failed"
    snippets: int = 0
    frames: int = 0
    seconds: float = 0.0
    reason: str = ""


def valid_features(path: Path) -> bool:
    """True if `path` holds a finished feature file: float32 [L >= 1, 1024], all finite."""
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return (
        x.dtype == np.float32
        and x.ndim == 2
        and x.shape[0] >= 1
        and x.shape[1] == FEATURE_DIM
        and bool(np.isfinite(x).all())
    )


def check_features(x: np.ndarray, name: str) -> np.ndarray:
    """Validate features before they are written: float32 [L >= 1, 1024], finite (else ValueError)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError(f"{name}: no 16-frame snippet (fewer than {SNIPPET} frames)")
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise ValueError(f"{name}: features of shape {x.shape}, expected [L, {FEATURE_DIM}]")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or inf")
    return x


def resolve_shard(text: str | None, rank: int = 0, world: int = 1) -> tuple[int, int]:
    """`--shard I/N` (None = 0/1), split further over `world` torchrun ranks → (index, count) of this process.

    Rank r of shard I takes shard I·world + r of N·world, so all (I, r) pairs partition the video list.
    """
    i, n = parse_shard(text) if text is not None else (0, 1)
    return i * world + rank, n * world


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) when run alone."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def shard_jobs(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """Every `count`-th job of the name-sorted list from `index` (interleaved, so long videos spread over shards)."""
    return sorted(jobs, key=lambda j: j.name)[index::count]


def list_videos(video_dir: Path) -> list[Job]:
    """Video files directly in `video_dir` (by extension), sorted; the video name is the file stem."""
    if not video_dir.is_dir():
        raise InputError(f"{video_dir}: video folder not found (--video_dir)")
    import video

    files = sorted(p for p in video_dir.iterdir() if p.suffix.lower() in video.VIDEO_EXTENSIONS and p.name[0] != ".")
    if not files:
        raise InputError(f"{video_dir}: no video files ({' '.join(video.VIDEO_EXTENSIONS)})")
    jobs: dict[str, Job] = {}
    for p in files:
        safe_file_name(p.stem, video_dir, "video file name")  # it names the features: <name>_rgb.npy
        if p.stem in jobs:
            raise InputError(f"{p}: same name as {jobs[p.stem].source.name}; features would collide")
        jobs[p.stem] = Job(p.stem, p)
    return list(jobs.values())


def list_frame_folders(input_dir: Path, mode: str) -> list[Job]:
    """Per-video frame folders `<input_dir>/<video>/{rgb,flow_x,flow_y}/` (video.write_frame_folders), sorted."""
    if not input_dir.is_dir():
        raise InputError(f"{input_dir}: frame folder not found (--input_dir)")
    sub = "rgb" if mode == "rgb" else "flow_x"
    jobs = [
        Job(safe_file_name(p.name, input_dir, "frame folder name"), p)
        for p in sorted(input_dir.iterdir())
        if (p / sub).is_dir()
    ]
    if not jobs:
        raise InputError(f"{input_dir}: no <video>/{sub}/ frame folders (write them with `python dataset.py`)")
    return jobs


def run_jobs(
    jobs: Sequence[Job],
    nets: dict[str, InceptionI3d],
    output_dir: Path,
    device: torch.device,
    *,
    two_stage: bool = False,
    batch_size: int = 8,
    jpeg: bool = True,
    workers: int | None = None,
    skip_existing: bool = True,
    desc: str = "videos",
    flow: str = "tvl1",
) -> list[Result]:
    """Extract every job's missing modalities (`nets`: modality → net), writing `<name>_<modality>.npy` atomically.

    A video that fails (unreadable, too short, bad frames) is reported in its Result and the others go on; an output
    that cannot be written (utils.OutputError: disk full, read-only folder) stops the run.
    """
    import video  # decoder libraries only when videos are actually read

    results = []
    overall = Progress(jobs, desc=desc, unit="video")
    for job in overall:
        outputs = {m: output_dir / f"{job.name}_{m}.npy" for m in nets}
        todo = [m for m in nets if not (skip_existing and valid_features(outputs[m]))]
        if not todo:
            results.append(Result(job.name, "skipped"))
            continue
        t0 = time.perf_counter()
        bar = Progress(desc=job.name, unit="frame", leave=False)
        try:
            rgb_net, flow_net = (nets[m] if m in todo else None for m in MODALITIES)
            # (the features get names of their own: `flow` is the optical-flow method of every video of the run)
            if two_stage:
                bar.total = sum(1 for _ in (job.source / "flow_x").glob("*.jpg"))
                pairs = video.read_frame_folders(job.source)
                rgb_feats, flow_feats = run_frames(pairs, rgb_net, flow_net, device, batch_size, bar)
            else:
                bar.total = video.probe_video(job.source).num_frames_25 - 1
                kwargs = {"batch_size": batch_size, "jpeg": jpeg, "workers": workers, "progress": bar, "flow": flow}
                rgb_feats, flow_feats = extract_video(job.source, rgb_net, flow_net, device, **kwargs)
            feats = {"rgb": rgb_feats, "flow": flow_feats}
            checked = {m: check_features(feats[m], f"{job.name}_{m}") for m in todo}  # all valid before any write
            for m in todo:
                atomic_np_save(checked[m], outputs[m])
            n = len(checked[todo[0]])
            results.append(Result(job.name, "extracted", n, bar.n, time.perf_counter() - t0))
        except OutputError:
            raise  # a full or read-only output folder fails every video alike: stop with its one line
        except Exception as e:  # a bad video must not stop a 20k-video run; it is reported at the end
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            results.append(Result(job.name, "failed", seconds=time.perf_counter() - t0, reason=reason))
            overall.write(f"failed: {job.name}: {reason}", file=sys.stderr)
        finally:
            bar.close()
    return results


def summary(results: Sequence[Result], title: str) -> str:
    """Readable table: videos, snippets, frames, time and frames/s per status, then one line per failed video."""
    lines = [title, f"{'status':<10} {'videos':>7} {'snippets':>9} {'frames':>9} {'seconds':>9} {'frames/s':>9}"]
    for status in ("extracted", "skipped", "failed"):
        rs = [r for r in results if r.status == status]
        frames, secs = sum(r.frames for r in rs), sum(r.seconds for r in rs)
        rate = f"{frames / secs:9.1f}" if status == "extracted" and secs > 0 else f"{'-':>9}"
        snippets = sum(r.snippets for r in rs)
        lines.append(f"{status:<10} {len(rs):>7} {snippets:>9} {frames:>9} {secs:>9.1f} {rate}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines.append("failed videos:")
        lines += [f"  {r.name}: {r.reason}" for r in failed]
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video_dir", type=Path, help="one command: folder of video files")
    src.add_argument("--input_dir", type=Path, help="two-stage: folder of <video>/{rgb,flow_x,flow_y}/ frame folders")
    p.add_argument("--output_dir", type=Path, required=True, help="where <video>_{rgb,flow}.npy go")
    p.add_argument("--rgb_weights", type=Path, help="RGB I3D state-dict (pytorch-i3d rgb_imagenet.pt)")
    p.add_argument("--flow_weights", type=Path, help="flow I3D state-dict (pytorch-i3d flow_imagenet.pt)")
    p.add_argument("--mode", choices=MODALITIES, help="two-stage: which stream to extract")
    p.add_argument("--weights", type=Path, help="two-stage: I3D state-dict for --mode")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (under torchrun: cuda:LOCAL_RANK)")
    p.add_argument(
        "--flow",
        choices=("tvl1", "opencv"),
        default="tvl1",
        help="optical flow: tvl1 = port of the authors' CUDA TV-L1, on --device (default); opencv = OpenCV's CPU class",
    )
    p.add_argument("--workers", type=int, default=None, help="TV-L1 CPU threads (tvl1) or processes (opencv)")
    p.add_argument("--batch_size", type=int, default=8, help="16-frame snippets per I3D forward pass")
    p.add_argument("--shard", default=None, help="I/N: extract only shard I (0-based) of N of the sorted videos")
    p.add_argument("--no_jpeg", action="store_true", help="skip the JPEG (quality 95) round trip of the frames")
    p.add_argument(
        "--skip_existing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip videos whose outputs exist and are valid (default); --no-skip_existing recomputes",
    )
    return p


def weight_paths(args: argparse.Namespace) -> dict[str, Path]:
    """modality → I3D weights file, from --rgb_weights/--flow_weights (one command) or --mode/--weights."""
    if args.video_dir is not None:
        if args.mode or args.weights:
            raise InputError(
                "--mode/--weights are for the two-stage --input_dir path; use --rgb_weights/--flow_weights"
            )
        paths = {"rgb": args.rgb_weights, "flow": args.flow_weights}
        if not any(paths.values()):
            raise InputError(f"--video_dir needs --rgb_weights and/or --flow_weights (I3D weights): {WEIGHTS_HELP}")
    else:
        if args.rgb_weights or args.flow_weights:
            raise InputError("--input_dir (two-stage) takes --mode and --weights, not --rgb_weights/--flow_weights")
        if not (args.mode and args.weights):
            raise InputError(f"--input_dir needs --mode rgb|flow and --weights (I3D weights): {WEIGHTS_HELP}")
        paths = {args.mode: args.weights}
    return {m: p for m, p in paths.items() if p is not None}


def job_key(args: argparse.Namespace, weights: dict[str, Path], shards: int) -> str:
    """What makes processes shards of one job, hashed: the same videos (or frame folders), weights files, optical
    flow, JPEG round trip and shard count. Only such processes share an output folder (utils.claim_output_dir)."""
    source = args.video_dir if args.video_dir is not None else args.input_dir
    parts = {
        "source": os.path.realpath(source),
        "weights": {m: os.path.realpath(p) for m, p in sorted(weights.items())},
        "flow": args.flow,
        "jpeg": not args.no_jpeg,
        "shards": shards,
    }
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise InputError(f"--batch_size {args.batch_size}: must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be at least 1")
    paths = weight_paths(args)
    rank, world, local_rank = dist_env()
    shard, shards = resolve_shard(args.shard, rank, world)
    workers = args.workers
    if workers is None and world > 1:  # ranks on one machine share its cores for optical flow
        workers = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    device = resolve_device(args.device)
    if device.type == "cuda" and device.index is None and world > 1:
        device = torch.device("cuda", local_rank)  # one GPU per torchrun rank
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # pinned buffers and cuDNN handles on this rank's GPU
    two_stage = args.input_dir is not None
    jobs = list_frame_folders(args.input_dir, args.mode) if two_stage else list_videos(args.video_dir)
    nets = {m: load_i3d(p, 3 if m == "rgb" else 2).to(device) for m, p in paths.items()}
    # Inputs are valid: the folder is now made writable (else one line), held for this run (shards of one job share
    # it, each shard once), and cleared of killed runs' temporaries.
    job = job_key(args, paths, shards)
    prepare_output_dir(args.output_dir, "--output_dir", job=job, part=f"{shard}/{shards}")
    mine = shard_jobs(jobs, shard, shards)
    label = f"shard {shard}/{shards}" if shards > 1 else "all"
    results = run_jobs(
        mine,
        nets,
        args.output_dir,
        device,
        two_stage=two_stage,
        batch_size=args.batch_size,
        jpeg=not args.no_jpeg,
        workers=workers,
        skip_existing=args.skip_existing,
        desc=f"videos ({label})",
        flow=args.flow,
    )
    title = f"extraction summary: {len(mine)} of {len(jobs)} videos ({label}), {', '.join(nets)} → {args.output_dir}"
    print(summary(results, title), flush=True)
    return 1 if any(r.status == "failed" for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 when all videos are done, 1 if any failed (see the summary), 2 on bad input."""
    return run_cli(
        lambda: run(argv), interrupted="run the same command again to continue (finished videos are skipped)"
    )


if __name__ == "__main__":
    sys.exit(main())

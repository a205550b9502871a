"""Benchmarks (not tests): `python bench.py [SECTION ...] [--device cpu|cuda]`.

Each section times the project's fast path against a slow, obviously-correct reference in the same run
and prints the ratio. Sections register themselves in SECTIONS below; run with no section to run all.
Record the printed tables (with the machine) in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {}
ROOT = Path(__file__).resolve().parent
TEST_DATA = ROOT / "tests" / "data"  # the real annotation files shipped with the tests


def media_folder() -> Path:
    """Real videos and I3D weights: the folder named by ACRNET_TEST_MEDIA (videos/, i3d/; tests/data/README.md).
    Without it the sections that need them say so and skip those parts."""
    tests_on_path()
    from conftest import media_folder as found

    return found() or Path("<set ACRNET_TEST_MEDIA>")


def tests_on_path() -> None:
    """Make tests/ importable (the slow reference implementations live there)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))


def section(name: str):
    """Decorator: register a benchmark section under `name`."""

    def register(fn: Callable[[argparse.Namespace], None]):
        SECTIONS[name] = fn
        return fn

    return register


def timeit(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall time of `fn()` in seconds (synchronising CUDA around each call)."""
    for _ in range(warmup):
        fn()
    times = sorted(_timed(fn, device) for _ in range(repeat))
    return times[len(times) // 2]


def _timed(fn: Callable[[], object], device: str) -> float:
    """Wall time (s) of one `fn()`, synchronising CUDA before and after so the GPU's queued work is counted."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


# --- sections (each helper adds its own below this line; keep one function per section) ---


@section("main")
def bench_main(args: argparse.Namespace) -> None:
    """main.py: a training step (forward, loss, backward, Adam) with the foreach Adam baseline vs the fused Adam that
    main.py uses; and the test pass (method §9–10) per video vs the bare forward passes over the same videos."""
    import tempfile

    import dataset
    import inference
    import main as acr
    from demo import make_demo
    from model import ACRNet, acrnet_loss

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = ACRNet(20).to(device)
    shapes = [(8, 48)] if args.quick else [(8, 48), (32, 750)] if device.type == "cuda" else [(8, 48), (8, 128)]
    print(f"{'N x T':>10} {'foreach Adam':>13} {'fused Adam':>11} {'ratio':>6}")
    for n, t in shapes:
        x = torch.rand(n, t, 2048, device=device)
        y = torch.zeros(n, 20, device=device)
        y[:, 0] = 1
        times = []
        for fused in (False, True):
            opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3, foreach=not fused, fused=fused)

            def step(opt=opt, x=x, y=y) -> None:
                loss, _ = acrnet_loss(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            times.append(timeit(step, repeat=3 if args.quick else 5, device=device.type))
        print(f"{f'{n} x {t}':>10} {1e3 * times[0]:>10.1f} ms {1e3 * times[1]:>8.1f} ms {times[0] / times[1]:>5.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        data = make_demo(tmp, max_test=10 if args.quick else None)
        cfg = acr.make_config(["--demo", "--data_path", str(data), "--device", args.device, "--no_progress"])
        split = dataset.load_split(data, "thumos14", "test", progress=False)
        feats = dataset.FeatureDataset(split, cfg.num_seg, mode="test")
        model.eval()

        @torch.no_grad()
        def forward_only() -> None:
            for i in range(len(feats)):
                out = model(feats[i][0].to(device)[None])
                out.seg_score.cpu()

        base = timeit(forward_only, repeat=3, device=device.type)
        full = timeit(lambda: inference.test_pass(model, split, cfg, device), repeat=3, device=device.type)
        v = len(split)
        print(
            f"test pass, {v} demo videos (T' <= {cfg.num_seg}): forward only {1e3 * base / v:.1f} ms/video, "
            f"full (forward + detect + mAP) {1e3 * full / v:.1f} ms/video, overhead {full / base:.2f}x"
        )


@section("extract")
def bench_extract(args: argparse.Namespace) -> None:
    """Frames/s of each extraction stage (decode, TV-L1, I3D RGB, I3D flow) and end to end (extract.extract_video).

    I3D is timed on random uint8 frames through extract.SnippetRunner (crop, transfer, [-1, 1], forward), so it runs
    where PyAV / OpenCV are missing; the video stages need them and videos/v_GGSY1Qvo990.mp4 of ACRNET_TEST_MEDIA.
    """
    import itertools

    import numpy as np

    from extract import SnippetRunner
    from i3d import InceptionI3d, load_i3d

    device = torch.device(args.device)
    rgb_path = media_folder() / "i3d" / "rgb_scratch_kinetics400.pt"
    torch.manual_seed(0)
    nets = {  # the real RGB weights when present; random flow weights (same cost)
        "rgb": load_i3d(rgb_path, 3) if rgb_path.is_file() else InceptionI3d(3).eval(),
        "flow": InceptionI3d(2).eval(),
    }
    nets = {m: net.to(device) for m, net in nets.items()}

    def row(name: str, frames: int, seconds: float) -> None:
        print(f"{name:<52}{frames:>7}{seconds:>9.2f}{frames / seconds:>10.1f}", flush=True)

    print(f"{'stage':<52}{'frames':>7}{'s':>9}{'frames/s':>10}")
    batches = [1, 4] if device.type == "cpu" else [8, 32]
    if args.quick:
        batches = batches[:1]
    rng = np.random.default_rng(0)
    for m, net in nets.items():
        channels = 3 if m == "rgb" else 2
        for bs in batches:
            frames = rng.integers(0, 256, (bs * 16, 256, 341, channels), dtype=np.uint8)

            def run(net=net, bs=bs, frames=frames) -> None:
                runner = SnippetRunner(net, device, bs)
                for f in frames:
                    runner.add(f)
                runner.finish()  # copies the features to the host: synchronises

            dt = timeit(run, repeat=1 if device.type == "cpu" else 5, warmup=1, device=args.device)
            row(f"I3D {m} (SnippetRunner, batch {bs} snippets)", len(frames), dt)
    if device.type == "cuda":  # what full fp32 costs against PyTorch's default TF32 convolutions (extract uses fp32)
        x = torch.rand(batches[-1], 3, 16, 224, 224, device=device) * 2 - 1
        feats, before = {}, torch.backends.cudnn.conv.fp32_precision
        for precision in ("ieee", "tf32"):
            torch.backends.cudnn.conv.fp32_precision = precision
            torch.backends.cudnn.benchmark = True
            with torch.inference_mode():
                feats[precision] = nets["rgb"].extract_features(x)
                dt = timeit(lambda: nets["rgb"].extract_features(x), repeat=5, device="cuda")
            row(f"I3D rgb forward only, {precision} convolutions, batch {len(x)}", len(x) * 16, dt)
        torch.backends.cudnn.conv.fp32_precision = before
        diff = (feats["tf32"] - feats["ieee"]).abs().max() / feats["ieee"].abs().max()
        print(f"TF32 vs fp32 features: max |diff| / max |feature| = {float(diff):.2e}")

    try:
        import video
        from extract import extract_video
    except ImportError as e:  # a bare GPU box: I3D figures only
        print(f"video stages skipped: {e}")
        return
    src = media_folder() / "videos" / "v_GGSY1Qvo990.mp4"
    if not src.is_file():
        print(f"video stages skipped: {src} is absent")
        return
    t0 = time.perf_counter()
    decoded = list(video.iter_frames(src))
    row(f"decode 25 fps + resize ({src.name})", len(decoded), time.perf_counter() - t0)
    t0 = time.perf_counter()
    for f in decoded:
        video.jpeg_roundtrip(f)
    row("JPEG q95 round trip (RGB)", len(decoded), time.perf_counter() - t0)
    n_pairs = 2 if args.quick else 6
    grays = [video.to_gray(f) for f in decoded[200 : 201 + n_pairs]]
    t0 = time.perf_counter()
    for a, b in zip(grays[:-1], grays[1:], strict=False):
        video.quantize_flow(video.tvl1_flow(a, b))
    row("TV-L1 + quantise, 1 process", n_pairs, time.perf_counter() - t0)
    if args.quick:  # end to end on the first 49 frames (3 snippets), RGB only
        real_iter = video.iter_frames
        video.iter_frames = lambda p: itertools.islice(real_iter(p), 49)
        try:
            t0 = time.perf_counter()
            rgb, _ = extract_video(src, nets["rgb"], None, device)
            row("end to end, RGB only, first 49 frames", 48, time.perf_counter() - t0)
        finally:
            video.iter_frames = real_iter
        return
    t0 = time.perf_counter()
    rgb, _ = extract_video(src, nets["rgb"], None, device)
    row(f"end to end, RGB only ({len(rgb)} snippets)", len(decoded) - 1, time.perf_counter() - t0)
    t0 = time.perf_counter()
    rgb, flow = extract_video(src, nets["rgb"], nets["flow"], device)
    row(f"end to end, RGB + flow, all cores ({len(rgb)} snippets)", len(decoded) - 1, time.perf_counter() - t0)


@section("video")
def bench_video(args: argparse.Namespace) -> None:
    """Frames/s of decode+resize (video.iter_frames) and TV-L1 flow (method §12.3 parameters), 1 core and all cores."""
    import os
    import tempfile
    from fractions import Fraction

    import av
    import cv2

    import video

    src = media_folder() / "videos" / "v_GGSY1Qvo990.mp4"
    if not src.is_file():
        print(f"skipped: {src} is absent")
        return
    t0 = time.perf_counter()
    frames = list(video.iter_frames(src))
    dt = time.perf_counter() - t0
    h, w = frames[0].shape[:2]
    print(f"{'stage':<44}{'frames':>7}{'s':>9}{'frames/s':>10}")
    print(f"{'decode 25 fps + resize (' + f'{w}x{h})':<44}{len(frames):>7}{dt:>9.2f}{len(frames) / dt:>10.1f}")
    n_pairs = 4 if args.quick else 8  # 2 chunks of video._CHUNK = 4: both workers busy
    grays = [video.to_gray(f) for f in frames[100 : 101 + n_pairs]]
    threads = cv2.getNumThreads()
    for nt in (1, threads):
        cv2.setNumThreads(nt)
        t0 = time.perf_counter()
        for a, b in zip(grays[:-1], grays[1:], strict=False):
            video.tvl1_flow(a, b)
        dt = time.perf_counter() - t0
        print(f"{f'TV-L1, 1 process, {nt} OpenCV thread(s)':<44}{n_pairs:>7}{dt:>9.2f}{n_pairs / dt:>10.3f}")
    cv2.setNumThreads(threads)
    # all cores through rgb_flow_frames: a lossless clip of the same frames (the pool reads a file)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mkv"
        with av.open(str(clip), "w") as c:
            s = c.add_stream("ffv1", rate=25)
            s.width, s.height, s.pix_fmt = w, h, "yuv444p"
            s.time_base = s.codec_context.time_base = Fraction(1, 25)
            for k, img in enumerate(frames[100 : 101 + n_pairs]):
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts = k
                c.mux(s.encode(f))
            c.mux(s.encode())
        for workers in sorted({1, os.cpu_count() or 1}):
            if workers > 1:  # start the pool outside the timing
                list(video._pool(workers).map(abs, range(workers)))
            t0 = time.perf_counter()
            n = sum(1 for _ in video.rgb_flow_frames(clip, workers=workers))
            dt = time.perf_counter() - t0
            print(f"{f'rgb_flow_frames (flow + JPEG), workers={workers}':<44}{n:>7}{dt:>9.2f}{n / dt:>10.3f}")


@section("flow")
def bench_flow(args: argparse.Namespace) -> None:
    """TV-L1: tvl1.py (the port of OpenCV's CUDA class, on --device) against OpenCV's CPU DualTVL1 (the baseline a user
    would otherwise run, the authors' parameters, the same number of threads) on real 341×256 frames, interleaved:
    1. frame pairs/s; 2. per shared video, on its first frames: quantised-flow agreement (method §12.4), end-point
    difference, inner iterations per warp, and the cosine of I3D flow features from either flow (a PROXY network: the
    real I3D RGB weights with Conv3d_1a averaged over its 3 input channels and copied to 2 — TSN's cross-modality
    initialisation; no I3D flow weights exist here); 3. extract.py end to end (RGB + flow features), frames capped."""
    import itertools
    import statistics

    import cv2
    import numpy as np

    import tvl1
    import video
    from extract import SnippetRunner, extract_video
    from i3d import InceptionI3d, load_i3d

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    threads = tvl1.available_cores()
    cv2.setNumThreads(threads)
    videos = sorted((media_folder() / "videos").glob("*.*"))
    if not videos:
        print(f"skipped: no videos in {media_folder() / 'videos'}")
        return

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def grey_frames(path: Path, start: int, count: int) -> np.ndarray:
        frames = itertools.islice(video.iter_frames(path), start, start + count)
        return np.stack([video.to_gray(f) for f in frames])

    # 1. pairs/s at 341×256, interleaved rounds (medians): the load of a shared machine hits both alike
    src = media_folder() / "videos" / "v_GGSY1Qvo990.mp4"
    n_port = video.FLOW_BATCH_GPU if cuda else 2 * threads
    n_cv = 2 if args.quick else 2 * threads
    g = grey_frames(src, 200, max(n_port, n_cv) + 1)
    gt = torch.from_numpy(g).to(device)
    tvl1.tvl1(gt[:1], gt[1:2], threads=threads)  # numba cache load / CUDA init
    port, cv = [], []
    for _ in range(1 if args.quick else 3):
        sync()
        t0 = time.perf_counter()
        tvl1.tvl1(gt[:n_port], gt[1 : n_port + 1], threads=threads)
        sync()
        port.append(n_port / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for a, b in zip(g[:n_cv], g[1 : n_cv + 1], strict=True):
            video.tvl1_flow(a, b)
        cv.append(n_cv / (time.perf_counter() - t0))
    p, c = statistics.median(port), statistics.median(cv)
    where = f"{device}" if cuda else f"CPU, {threads} threads"
    print(f"{'TV-L1 at 341x256, authors parameters':<52}{'pairs':>6}{'pairs/s':>9}")
    print(f"{f'tvl1.py ({where}, batch {n_port})':<52}{n_port:>6}{p:>9.2f}")
    print(f"{f'OpenCV CPU DualTVL1 ({threads} OpenCV threads)':<52}{n_cv:>6}{c:>9.2f}")
    rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(port, cv, strict=True))
    print(f"ratio tvl1.py / OpenCV: {p / c:.2f}x (per round: {rounds})")
    if cuda:  # the CUDA backends (auto = triton when importable) by batch size, rounds interleaved, medians
        backends = ["triton", "torch"]
        batches = [16] if args.quick else [16, 64, n_port]
        rates: dict[tuple[str, int], list[float]] = {(k, n): [] for k in backends for n in batches}
        for backend in backends:  # compile / warm up
            tvl1.tvl1(gt[:2], gt[1:3], backend=backend)
        for _ in range(1 if args.quick else 3):
            for (backend, n), got in rates.items():
                sync()
                t0 = time.perf_counter()
                tvl1.tvl1(gt[:n], gt[1 : n + 1], backend=backend)
                sync()
                got.append(n / (time.perf_counter() - t0))
        print(f"{'CUDA backends at 341x256 (auto: ' + tvl1._auto_backend(device) + ')':<52}{'pairs':>6}{'pairs/s':>9}")
        for (backend, n), got in rates.items():
            print(f"{f'  {backend}, batch {n}':<52}{n:>6}{statistics.median(got):>9.1f}")

    # 2. agreement, iterations, I3D proxy-flow features, per shared video
    rgb_path = media_folder() / "i3d" / "rgb_scratch_kinetics400.pt"
    net = None
    if rgb_path.is_file():  # TSN cross-modality initialisation of a flow I3D from the RGB one (a proxy, see above)
        sd = dict(load_i3d(rgb_path, 3).state_dict())
        w = sd["Conv3d_1a_7x7.conv3d.weight"]
        sd["Conv3d_1a_7x7.conv3d.weight"] = w.mean(1, keepdim=True).repeat(1, 2, 1, 1, 1)
        net = InceptionI3d(2, num_classes=sd["logits.conv3d.weight"].shape[0])
        net.load_state_dict(sd)
        net = net.eval().to(device)
    n_frames = 17 if args.quick else 65  # OpenCV's CPU class takes ~1-2 s per pair here
    print(f"\nfirst {n_frames} frames of each video ({n_frames - 1} pairs), quantised flow (method §12.4):")
    head = f"{'video':<28}{'identical':>10}{'within 1':>10}{'EPE px':>8}{'iters/warp':>11}{'(full res)':>11}"
    print(head + f"{'cos I3D proxy':>15}")
    hist = np.zeros(5, np.int64)  # iterations per warp: 2, 3-10, 11-50, 51-299, 300
    for path in videos:
        g = grey_frames(path, 0, n_frames)
        flow, iters = tvl1.tvl1(torch.from_numpy(g[:-1]).to(device), torch.from_numpy(g[1:]).to(device),
                                threads=threads, return_iterations=True)  # fmt: skip
        port_f = flow.permute(0, 2, 3, 1).cpu().numpy()
        cv_f = np.stack([video.tvl1_flow(a, b) for a, b in zip(g[:-1], g[1:], strict=True)])
        qp, qc = video.quantize_flow(port_f), video.quantize_flow(cv_f)
        diff = np.abs(qp.astype(np.int16) - qc)
        epe = float(np.linalg.norm(port_f - cv_f, axis=-1).mean())
        used = iters[iters > 0]
        hist += np.histogram(used, bins=[2, 3, 11, 51, 300, 301])[0]
        cosine = ""
        if net is not None and len(g) > 16:
            feats = []
            for q in (qp, qc):
                runner = SnippetRunner(net, device, batch_size=4)
                for f in q:  # the authors' JPEG round trip of each component
                    runner.add(np.stack([video.jpeg_roundtrip(f[..., 0]), video.jpeg_roundtrip(f[..., 1])], -1))
                feats.append(torch.from_numpy(runner.finish()))
            cos = torch.nn.functional.cosine_similarity(*feats, dim=1)
            cosine = f"{float(cos.mean()):.4f} (min {float(cos.min()):.4f})"
        print(
            f"{path.name:<28}{100 * (diff == 0).mean():>9.1f}%{100 * (diff <= 1).mean():>9.1f}%{epe:>8.3f}"
            f"{used.mean():>11.1f}{iters[:, 0].mean():>11.1f}  {cosine}"
        )
    bins = dict(zip(["2", "3-10", "11-50", "51-299", "300"], hist.tolist(), strict=True))
    print(f"inner iterations per warp, all videos and levels (count of warps): {bins}")

    # 3. extract.py end to end: RGB + flow features (real RGB weights; the proxy flow net), frames capped on CPU
    if net is None:
        print("end to end skipped: no I3D RGB weights")
        return
    nets = (load_i3d(rgb_path, 3).to(device), net)
    cap = None if cuda else (33 if args.quick else 65)
    real_iter = video.iter_frames
    if cap:
        video.iter_frames = lambda *a, **k: itertools.islice(real_iter(*a, **k), cap)
    try:
        print(f"\nextract.py end to end on {src.name} ({'all' if cap is None else f'first {cap}'} frames, {device}):")
        for method in ("tvl1", "opencv"):
            if method == "opencv" and cuda and not args.quick:
                video.iter_frames = lambda *a, **k: itertools.islice(real_iter(*a, **k), 65)  # OpenCV: 65 frames
            t0 = time.perf_counter()
            rgb, _ = extract_video(src, *nets, device, flow=method)
            n = len(rgb) * 16 if cap is None and method == "tvl1" else (cap or 65) - 1
            dt = time.perf_counter() - t0
            print(f"  --flow {method:<7} {len(rgb)} snippets, {n} frames in {dt:.1f} s: {n / dt:.2f} frames/s")
    finally:
        video.iter_frames = real_iter


@section("flow_video")
def bench_flow_video(args: argparse.Namespace) -> None:
    """The 18 s clip (v_GGSY1Qvo990.mp4, 452 frames) through `main.py --video` (localize.run) with tvl1.py on
    --device, and its stages timed one by one: decode + resize, TV-L1, quantise + JPEG, I3D RGB, I3D flow (real RGB
    weights; a random flow I3D, same cost), ACRNet + post-processing + outputs (random ACRNet, THUMOS14 classes)."""
    import tempfile

    import numpy as np

    import localize
    import main as acr
    import tvl1
    import video
    from extract import SnippetRunner
    from i3d import InceptionI3d, load_i3d
    from model import ACRNet

    src = media_folder() / "videos" / "v_GGSY1Qvo990.mp4"
    rgb_path = media_folder() / "i3d" / "rgb_scratch_kinetics400.pt"
    if not (src.is_file() and rgb_path.is_file()):
        print(f"skipped: {src} or {rgb_path} is absent")
        return
    device = torch.device(args.device)
    cap = 65 if args.quick else None

    def clock(name: str, frames: int, fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(f"  {name:<44}{frames:>7}{dt:>9.1f}{frames / dt:>10.1f}", flush=True)
        return out

    print(f"{'stage':<46}{'frames':>7}{'s':>9}{'frames/s':>10}")
    frames = clock("decode 25 fps + resize", 452, lambda: list(video.iter_frames(src)))[:cap]
    grey = torch.from_numpy(np.stack([video.to_gray(f) for f in frames])).to(device)
    batch = video.FLOW_BATCH_GPU if device.type == "cuda" else 4 * tvl1.available_cores()

    def flow_all() -> torch.Tensor:  # pairs k → k+1 in batches, as video.py feeds them
        n = len(grey) - 1
        ends = [(k, min(k + batch, n)) for k in range(0, n, batch)]
        return torch.cat([tvl1.tvl1(grey[k:e], grey[k + 1 : e + 1]) for k, e in ends])

    flow = clock(f"TV-L1 tvl1.py (batches of {batch})", len(frames) - 1, flow_all)
    q = clock("quantise", len(frames) - 1, lambda: video.quantize_flow(flow.permute(0, 2, 3, 1)).cpu().numpy())
    rgb_j = clock("JPEG round trip (RGB)", len(frames) - 1, lambda: [video.jpeg_roundtrip(f) for f in frames[:-1]])

    def flow_jpeg() -> list[np.ndarray]:
        return [np.stack([video.jpeg_roundtrip(f[..., 0]), video.jpeg_roundtrip(f[..., 1])], -1) for f in q]

    flow_j = clock("JPEG round trip (flow x, y)", len(frames) - 1, flow_jpeg)
    torch.manual_seed(0)
    for name, net, items in (("I3D RGB", load_i3d(rgb_path, 3), rgb_j), ("I3D flow", InceptionI3d(2).eval(), flow_j)):
        runner = SnippetRunner(net.to(device), device, batch_size=4 if device.type == "cpu" else 8)
        clock(name, len(items), lambda runner=runner, items=items: ([runner.add(f) for f in items], runner.finish()))
    if cap:
        print("  (--quick: stages on the first 65 frames; the whole --video run skipped)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, flow_w = Path(tmp) / "acrnet.pth", Path(tmp) / "flow.pt"
        torch.save(ACRNet(20).state_dict(), ckpt)
        torch.save(InceptionI3d(2).state_dict(), flow_w)
        argv = ["--video", str(src), "--model_file", str(ckpt), "--data_name", "thumos14", "--rgb_weights",
                str(rgb_path), "--flow_weights", str(flow_w), "--device", str(device), "--save_path",
                str(Path(tmp) / "out"), "--data_path", str(Path(tmp) / "absent")]  # fmt: skip
        cfg = acr.make_config(argv)
        t0 = time.perf_counter()
        code = localize.run(cfg)
        print(f"  main.py --video, whole run (exit {code}): {time.perf_counter() - t0:.1f} s for 451 frames")


def thumos_test_outputs(quick: bool) -> dict:
    """Synthetic network outputs over THUMOS14's 210 real test videos (their durations and instances): smooth noisy
    CAS curves with a bump per instance and false bumps → {videos, classes, ground_truth, ambiguous, opts, inputs
    [(video, act [C], seg [T', C], L)], tiou}."""
    import numpy as np

    from dataset import DATASETS, class_names, read_ambiguous, read_annotations, split_videos

    info = DATASETS["thumos14"]
    ann = read_annotations(TEST_DATA / "thumos14" / "annotations.json")
    videos, _ = split_videos(ann, "thumos14", "test")
    if quick:
        videos = videos[:: len(videos) // 12][:12]
    classes = class_names(ann)
    ground_truth = {v: ann[v]["annotations"] for v in videos}
    ambiguous = read_ambiguous(ROOT / "result" / "ambiguous.txt")
    opts = dict(cls_th=0.1, act_th=np.arange(0.1, 1.0, 0.05), alpha=0.5, iou_th=0.1, fps=25, rate=16)

    # network outputs: a bump per instance (plus false bumps) on a noisy, lightly smoothed floor
    rng = np.random.default_rng(0)
    inputs = []
    for v in videos:
        L = int(ann[v]["duration"] * 25 / 16)
        t = min(L, 750)
        x = np.arange(t) + 0.5
        labels = {classes.index(a["label"]) for a in ann[v]["annotations"]}
        act = rng.uniform(0.0, 0.105, len(classes))  # ~5% of absent classes pass cls_th 0.1
        act[list(labels)] = rng.uniform(0.3, 0.95, len(labels))
        seg = 0.4 + 0.3 * rng.standard_normal((t, len(classes)))  # noisy: ~300-600 proposals per class
        for a in ann[v]["annotations"]:
            c = classes.index(a["label"])
            s, e = (np.array(a["segment"]) * 25 / 16 * t / L).tolist()
            width = max(0.5, (e - s) / 2)
            seg[:, c] += rng.uniform(0.4, 0.9) * np.exp(-0.5 * ((x - (s + e) / 2) / width) ** 2)
        for _ in range(int(rng.integers(3, 12))):  # false bumps in any class
            c, centre = int(rng.integers(len(classes))), rng.uniform(0, t)
            seg[:, c] += rng.uniform(0.2, 0.7) * np.exp(-0.5 * ((x - centre) / rng.uniform(0.5, 6)) ** 2)
        kernel = np.exp(-0.5 * (np.arange(-3, 4) / 0.5) ** 2)
        seg = np.apply_along_axis(lambda col, k=kernel: np.convolve(col, k / k.sum(), mode="same"), 0, seg)
        inputs.append((v, act, seg, L))

    return dict(videos=videos, classes=classes, ground_truth=ground_truth, ambiguous=ambiguous, opts=opts,
                inputs=inputs, tiou=info.tiou_thresholds)  # fmt: skip


@section("postprocess")
def bench_postprocess(args: argparse.Namespace) -> None:
    """The test tail on THUMOS14's 210 test videos: post-processing (method §9) + ambiguous filter + mAP (§10).
    Fast path: postprocess.detect_arrays per video → evaluate.Detections → ambiguous_overlap → match + class_ap.
    Baseline (the ratio): the authors' per-proposal post-processing (tests/authors_postprocess.py) and ActivityNet's
    evaluator (tests/authors_evaluate.py), interleaved in one run. The slow loop references of tests/ check both."""
    import numpy as np

    from evaluate import Detections, class_ap, match
    from postprocess import ambiguous_overlap, detect_arrays

    tests_on_path()
    from authors_evaluate import authors_detection_map
    from authors_postprocess import authors_detect
    from reference_evaluate import ref_detection_map
    from reference_postprocess import ref_detect, ref_filter_ambiguous

    d = thumos_test_outputs(args.quick)
    videos, classes, opts, inputs, tiou = d["videos"], d["classes"], d["opts"], d["inputs"], d["tiou"]

    def fast() -> tuple[Detections, np.ndarray]:
        found = [detect_arrays(act, seg, L, **opts) for _, act, seg, L in inputs]
        det = Detections.from_videos(videos, classes, found)
        det = det.select(~ambiguous_overlap(det.video, det.segment, videos, d["ambiguous"]))
        return det, class_ap(match(d["ground_truth"], det, tiou)).mean(axis=0)

    def authors() -> tuple[dict, np.ndarray]:
        preds = {}
        for v, act, seg, L in inputs:
            dets = authors_detect(act, seg, L, **opts)
            preds[v] = [{"label": classes[c], "score": sc, "segment": [s, e]} for c, s, e, sc in dets]
        _, ap = authors_detection_map(d["ground_truth"], preds, tiou, d["ambiguous"])
        return preds, ap.mean(axis=0)

    load = _load_note()
    times = interleaved_medians({"authors": authors, "fast": fast}, repeat=1 if args.quick else 3, device="cpu")
    t_det = timeit(lambda: [detect_arrays(a, s, L, **opts) for _, a, s, L in inputs], repeat=3, warmup=0)
    fast_det, fast_map = fast()
    t_eval = timeit(lambda: class_ap(match(d["ground_truth"], fast_det, tiou)), repeat=3, warmup=0)
    authors_preds, authors_map = authors()

    t0 = time.perf_counter()
    slow = {}
    for v, act, seg, L in inputs:
        slow[v] = [
            {"label": classes[c], "score": sc, "segment": [s, e]} for c, s, e, sc in ref_detect(act, seg, L, **opts)
        ]
    slow = ref_filter_ambiguous(slow, d["ambiguous"])
    slow_map = np.asarray(ref_detection_map(d["ground_truth"], slow, tiou))
    t_slow = time.perf_counter() - t0

    def same(a: dict, b: dict) -> bool:
        fa, fb = [(v, p) for v in videos for p in a[v]], [(v, p) for v in videos for p in b[v]]
        return len(fa) == len(fb) and all(
            (v, p["label"], p["segment"]) == (w, q["label"], q["segment"]) and abs(p["score"] - q["score"]) <= 1e-9
            for (v, p), (w, q) in zip(fa, fb, strict=True)
        )

    fast_preds = fast_det.as_dict()
    authors_kept = ref_filter_ambiguous(authors_preds, d["ambiguous"])  # what the authors' evaluator scores
    n_class = sum(len({p["label"] for p in fast_preds[v]}) for v in videos)
    print(f"{len(videos)} videos, {n_class} predicted (video, class) pairs, {len(fast_det.score)} predictions after")
    print(f"the ambiguous filter; {load} at the start")
    print(f"{'path':<52}{'seconds':>9}")
    print(f"{'authors: per-proposal numpy + ActivityNet evaluator':<52}{times['authors']:>9.2f}")
    print(
        f"{'fast: detect_arrays + filter + match/class_ap':<52}{times['fast']:>9.3f}"
        f"   ({t_det:.3f} detect, {t_eval:.3f} mAP)"
    )
    print(f"{'slow loop references (tests/, correctness)':<52}{t_slow:>9.2f}")
    print(f"speed-up over the authors' tail {times['authors'] / times['fast']:.1f}x ({_load_note()} at the end)")
    ok = lambda m: bool(np.allclose(fast_map, m, 0, 1e-12))  # noqa: E731
    print(f"predictions = references (1e-9): {same(fast_preds, slow)}, = authors': {same(fast_preds, authors_kept)}")
    print(f"mAP = references (1e-12): {ok(slow_map)}, = authors': {ok(authors_map)}")
    cols = " ".join(f"{t:.1f}" for t in tiou)
    print(f"mAP@{cols} AVG: " + " ".join(f"{100 * m:.2f}" for m in [*fast_map, fast_map.mean()]))


@section("bootstrap")
def bench_bootstrap(args: argparse.Namespace) -> None:
    """1000 bootstrap resamples of THUMOS14's 210 test videos (bootstrap.py: matched once, AP re-weighted per resample)
    vs the literal way: copy the drawn videos into new ground-truth and prediction dicts and run the evaluator
    (evaluate.detection_map, this project's fast one) per resample, timed on a few resamples and scaled to 1000."""
    import numpy as np

    import bootstrap
    from evaluate import Detections, class_ap, detection_map, match
    from postprocess import ambiguous_overlap, detect_arrays

    d = thumos_test_outputs(args.quick)
    videos, classes, tiou, gt = d["videos"], d["classes"], d["tiou"], d["ground_truth"]
    found = [detect_arrays(act, seg, L, **d["opts"]) for _, act, seg, L in d["inputs"]]
    det = Detections.from_videos(videos, classes, found)
    det = det.select(~ambiguous_overlap(det.video, det.segment, videos, d["ambiguous"]))
    n_boot = 100 if args.quick else 1000
    for top in (150, None):  # ~30k predictions (a real run's scale: the 150 best per video), then all
        sub = det
        if top is not None:
            order = np.lexsort((-det.score, det.video))  # by video, best first
            rank = np.arange(len(order)) - np.searchsorted(det.video[order], det.video[order])
            keep = np.zeros(len(order), dtype=bool)
            keep[order[rank < top]] = True
            sub = det.select(keep)
        preds = sub.as_dict()
        t0 = time.perf_counter()
        m = match(gt, sub, tiou)
        counts = bootstrap.resample_counts(len(videos), n_boot, 0)
        maps = bootstrap.resampled_maps(m, counts)
        t_fast = time.perf_counter() - t0
        low, high = bootstrap.percentile_interval(maps.mean(axis=1, keepdims=True))

        n_lit = 3 if args.quick else 10
        t0 = time.perf_counter()
        for row in counts[:n_lit]:
            drawn = dict(zip(videos, row.tolist(), strict=True))
            gt_b = {f"{v}#{k}": gt[v] for v in videos for k in range(drawn[v])}
            pred_b = {f"{v}#{k}": preds[v] for v in videos for k in range(drawn[v])}
            detection_map(gt_b, pred_b, tiou)
        t_lit = (time.perf_counter() - t0) / n_lit * n_boot
        print(
            f"{len(videos)} videos, {len(sub.score)} predictions, {n_boot} resamples: {t_fast:.2f} s (match once + "
            f"weighted AP); literal copies + evaluator ≈ {t_lit:.0f} s (from {n_lit}); {t_lit / t_fast:.0f}x"
        )
        observed = 100 * class_ap(m).mean(axis=0).mean()
        print(f"  mAP@AVG {observed:.2f}; mean over the resamples {100 * maps.mean(axis=1).mean():.2f}, 95 % interval "
              f"{100 * low[0]:.2f}–{100 * high[0]:.2f}")  # fmt: skip
    print(f"  {_load_note()}")


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int, device: str) -> dict[str, float]:
    """Median wall time (s) of each fn, called in turn within each round (after one warm-up round), so a machine's
    changing load hits every candidate alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rnd in range(repeat + 1):
        for name, fn in fns.items():
            seconds = _timed(fn, device)
            if rnd:
                times[name].append(seconds)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def _load_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"load average {load:.1f} on {os.cpu_count()} cores"


@section("model")
def bench_model(args: argparse.Namespace) -> None:
    """ACRNet's own steps, method §3–§6 (clustering, refining, video scores, both losses, their backward pass), against
    the authors' implementation as written (tests/authors_acrnet.py: §3 a T-step loop of tensor ops; §4 a Python loop
    over classes and videos, `refine_mask`, and the leaner loop over classes only, `refine_mask_by_class`), same inputs,
    interleaved rounds, medians."""
    tests_on_path()
    import authors_acrnet as A

    import model as M

    dev = torch.device(args.device)
    configs = [("ActivityNet1.3", 128, 80, 200), ("THUMOS14", 32, 750, 20)]
    if args.quick:
        configs = [("ActivityNet1.3", 8, 80, 200), ("THUMOS14", 4, 100, 20)]

    def compare(name: str, n: int, t: int, c: int) -> None:
        g = torch.Generator().manual_seed(0)
        cas = torch.randn(n, t, c, generator=g) * 3
        aas = torch.rand(n, t, 2, 1, generator=g)
        seg = (cas.softmax(-1) + aas.mean(2)) / 2
        label = (torch.rand(n, c, generator=g) < 2 / c).float()
        label[torch.arange(n), torch.randint(c, (n,), generator=g)] = 1
        seg, aas, label = seg.to(dev), aas.to(dev), label.to(dev)
        cas = M.conv_memory(cas.to(dev))  # stored as the network's last convolution leaves it on this device
        results = {}

        def ours() -> None:
            logits, streams = cas.detach().requires_grad_(), aas.detach().requires_grad_()
            mask, act, bkg = M.clustered_scores(seg, logits)
            out = M.ACRNetOutput(act, bkg, seg, mask, streams[:, :, 0], streams[:, :, 1], logits)
            loss = M.acrnet_loss(out, label)[0]
            loss.backward()
            results["ours"] = (loss.detach(), mask)

        def authors(refine: Callable, key: str) -> None:
            logits, streams = cas.detach().requires_grad_(), aas.detach().requires_grad_()
            mask = refine(seg, A.temporal_clustering(seg), logits)
            act, bkg = A.video_scores(seg, mask, logits)
            out = {"act_score": act, "bkg_score": bkg, "seg_mask": mask, "aas_rgb": streams[:, :, 0]}
            loss = A.total_loss({**out, "aas_flow": streams[:, :, 1]}, label)
            loss.backward()
            results[key] = (loss.detach(), mask)

        fns = {
            "ours": ours,
            "by_class": functools.partial(authors, A.refine_mask_by_class, "by_class"),
            "class_video": functools.partial(authors, A.refine_mask, "class_video"),
        }
        for threads in thread_counts:
            torch.set_num_threads(threads)
            med = interleaved_medians(fns, 3 if args.quick else 5, dev.type)
            # ours alone, call after call (as in a loop of §3–§6): its data stays in the caches between calls
            alone = timeit(ours, repeat=5 if args.quick else 15, device=dev.type)
            same = all((results["ours"][0] - results[k][0]).abs().item() < 1e-5 for k in ("by_class", "class_video"))
            same_mask = all(torch.equal(results["ours"][1], results[k][1]) for k in ("by_class", "class_video"))
            print(
                f"{name:<15} {f'N{n} T{t} C{c}':<14} {threads:>7} {med['ours'] * 1e3:9.1f} {alone * 1e3:8.1f} "
                f"{med['by_class'] * 1e3:10.1f} {med['by_class'] / med['ours']:6.1f}x "
                f"{med['class_video'] * 1e3:10.1f} {med['class_video'] / med['ours']:6.1f}x  {same} / {same_mask}"
            )

    # PyTorch's default threads, and one thread (on a busy machine every multi-threaded op waits for a free core)
    default_threads = torch.get_num_threads()
    thread_counts = [default_threads] + ([1] if default_threads > 1 and dev.type == "cpu" else [])
    print(
        f"{'config':<15} {'shape':<14} {'threads':>7} {'ours ms':>9} {'alone ms':>8} {'class ms':>10} {'ratio':>7} "
        f"{'cl×vid ms':>10} {'ratio':>7}  same loss / masks"
    )
    for config in configs:
        compare(*config)
    torch.set_num_threads(default_threads)
    print(
        "forward + losses + backward of §3–§6 from network outputs; authors' §4 as a loop over classes (class) or over "
        "classes and videos (cl×vid); ratios use 'ours ms' (interleaved with the baselines, whose work evicts ours "
        f"from the caches); 'alone ms' = ours called back to back; {_load_note()}\n"
        "context, not measured in this run: the authors' own code took ~1120 ms for this work at N128 T80 C200 (its "
        "§4 refining 774 ms) on a 2-core Intel Xeon CPU (measured 2026-11-30)"
    )


@section("step")
def bench_step(args: argparse.Namespace) -> None:
    """A whole training step (forward, losses, backward, Adam) of model.ACRNet (fused Adam, as main.py), once per
    memory layout (model.LAYOUTS; the device's own is marked *), against the authors' network and losses
    (tests/authors_acrnet.py: channel-first Conv1d, their attention and loops; default Adam) with the same weights and
    inputs, interleaved rounds, medians."""
    import contextlib

    tests_on_path()
    import authors_acrnet as A

    import model as M

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    configs = [("THUMOS14", 32 if cuda else 8, 750, 20, False), ("ActivityNet1.3", 128 if cuda else 32, 80, 200, True)]
    if args.quick:
        configs = [("THUMOS14", 2, 64, 20, False), ("ActivityNet1.3", 4, 40, 200, True)]
    layouts = {
        "time-major convs, softmax on copy": M.Layout(True, True),
        "channel-first convs, softmax dim -2": M.Layout(False, False),
    }
    if not args.quick:
        layouts |= {
            "time-major convs, softmax dim -2": M.Layout(True, False),
            "channel-first convs, softmax on copy": M.Layout(False, True),
        }
    own = M.layout_of(torch.empty(0, device=dev))

    @contextlib.contextmanager
    def layout(chosen: M.Layout):
        before = M.LAYOUTS.get(dev.type)
        M.LAYOUTS[dev.type] = chosen
        try:
            yield
        finally:
            M.LAYOUTS[dev.type] = before

    def compare(name: str, n: int, t: int, c: int, pool: bool) -> None:
        torch.manual_seed(0)
        net = M.ACRNet(c, pool=pool).to(dev).train()
        authors = A.AuthorsACRNet(c, pool=pool).to(dev).train()
        authors.load_state_dict(net.state_dict())
        x = torch.randn(n, t, 2048, device=dev)
        label = torch.zeros(n, c, device=dev)
        label[:, 0] = 1
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-3, fused=True)
        opt_authors = torch.optim.Adam(authors.parameters(), lr=1e-4, weight_decay=1e-3)

        def ours_step(chosen: M.Layout) -> None:
            with layout(chosen):
                loss, _ = M.acrnet_loss(net(x), label)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        def authors_step() -> None:
            loss = A.total_loss(authors(x), label)
            opt_authors.zero_grad(set_to_none=True)
            loss.backward()
            opt_authors.step()

        fns = {f"ours, {k}{' *' if v == own else ''}": functools.partial(ours_step, v) for k, v in layouts.items()}
        med = interleaved_medians({**fns, "authors": authors_step}, 3 if args.quick else 5, dev.type)
        print(f"{name} N{n} T{t} C{c}: whole training step, median of interleaved rounds")
        for k, s in med.items():
            print(f"  {k:<46} {s * 1e3:9.1f} ms  {med['authors'] / s:5.2f}x the authors'")
        if cuda:  # PyTorch runs fp32 matmuls in full fp32 by default (convolutions already use TF32 through cuDNN)
            before = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("high")
            s = interleaved_medians({"tf32": functools.partial(ours_step, own)}, 5, dev.type)["tf32"]
            torch.set_float32_matmul_precision(before)
            print(f"  {'ours *, TF32 matmuls (precision high)':<46} {s * 1e3:9.1f} ms")

    for config in configs:
        compare(*config)
    print(f"* = this device's layout in model.LAYOUTS; {torch.get_num_threads()} threads, {_load_note()}")


@section("dataset")
def bench_dataset(args: argparse.Namespace) -> None:
    """load_split's feature validation, per-item reads (mmap vs in-memory vs full np.load), §7.3 sampling."""
    import json
    import tempfile

    import numpy as np

    tests_on_path()
    from reference_dataset import ref_train_indices

    import dataset

    V, L, S = (20, 330, 750) if args.quick else (200, 330, 750)  # THUMOS14-like: ~330 snippets per video
    with tempfile.TemporaryDirectory() as tmp:
        feat = Path(tmp) / "thumos14" / "features" / "val"
        feat.mkdir(parents=True)
        rng = np.random.default_rng(0)
        ann = {}
        for i in range(V):
            n = int(rng.integers(L // 2, 3 * L // 2))
            for m in ("rgb", "flow"):
                np.save(feat / f"video_validation_{i:07d}_{m}.npy", rng.standard_normal((n, 1024), dtype=np.float32))
            ann[f"video_validation_{i:07d}"] = {"subset": "val", "annotations": [{"label": "A", "segment": [0, 1]}]}
        (Path(tmp) / "thumos14" / "annotations.json").write_text(json.dumps(ann))
        split = dataset.load_split(tmp, "thumos14", "train", progress=False)
        paths = split.rgb_paths + split.flow_paths
        mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{V} videos, {sum(split.num_snippets)} snippets, {mb:.0f} MiB of features (page cache warm)")

        def exact_check():  # the obvious check: whole-array isfinite per file
            return all(bool(np.isfinite(np.load(p)).all()) for p in paths)

        def fast_check():
            return all(dataset._all_finite(np.load(p, mmap_mode="r")) for p in paths)

        rows = [
            ("validate: np.load + isfinite().all()", timeit(exact_check, repeat=3)),
            ("validate: mmap + chunked isfinite", timeit(fast_check, repeat=3)),
            (
                "load_split (all checks)",
                timeit(lambda: dataset.load_split(tmp, "thumos14", "train", progress=False), repeat=3),
            ),
        ]

        def full_read_epoch():  # baseline: read both files whole, then index
            for v in range(len(split)):
                idx = dataset.sample_train_indices(split.num_snippets[v], S, np.random.default_rng(v))
                np.concatenate([np.load(split.rgb_paths[v])[idx], np.load(split.flow_paths[v])[idx]], axis=1)

        ds = dataset.FeatureDataset(split, S, "train")
        mem = dataset.FeatureDataset(split, S, "train", in_memory=True)
        rows += [
            (f"train epoch S={S}: np.load whole + index", timeit(full_read_epoch, repeat=3)),
            (f"train epoch S={S}: FeatureDataset mmap", timeit(lambda: [ds[(v, v)] for v in range(len(ds))], repeat=3)),
            (f"train epoch S={S}: in_memory=True", timeit(lambda: [mem[(v, v)] for v in range(len(mem))], repeat=3)),
        ]
    g = np.random.default_rng(0)
    for n in (330, 7919):
        ref = timeit(lambda n=n: ref_train_indices(n, S, lambda a, b: int(g.integers(a, b))), repeat=5)
        fast = timeit(lambda n=n: dataset.sample_train_indices(n, S, np.random.default_rng(1)), repeat=5)
        rows += [(f"sample_train_indices L={n}: reference loop", ref), (f"sample_train_indices L={n}: numpy", fast)]
    width = max(len(name) for name, _ in rows)
    for name, t in rows:
        print(f"{name:<{width}}  {1e3 * t:9.2f} ms")
    for a, b in ((0, 1), (3, 4), (3, 5), (6, 7), (8, 9)):
        print(f"speed-up {rows[b][0]} vs {rows[a][0].split(':')[-1].strip()}: {rows[a][1] / rows[b][1]:.1f}x")


@section("wtalc")
def bench_wtalc(args: argparse.Namespace) -> None:
    """W-TALC layout: time and peak memory (VmHWM) of reading a THUMOS14-sized JOINT file with the restricted
    unpickler, and of a short main.py run on it vs the same features in the authors' layout (memory-mapped)."""
    import json
    import os
    import subprocess
    import tempfile

    import numpy as np

    tests_on_path()
    from wtalc_layout import write_wtalc

    import dataset
    import wtalc

    # THUMOS14's real durations (W-TALC folder) → L = floor(duration · 25 / 16) per video; --quick: every 10th video
    names, _, ann = wtalc.read_wtalc_folder(TEST_DATA / "wtalc" / "Thumos14reduced-Annotations")
    names = names[::10] if args.quick else names
    rng = np.random.default_rng(0)
    videos = {}
    for v in names:
        e = ann[v]
        L = int(e["duration"] * 25 / 16)
        videos[v] = {
            "subset": {"val": "validation"}.get(e["subset"], e["subset"]),
            "features": rng.random((L, 2048), dtype=np.float32),
            "labels": [a["label"] for a in e["annotations"]],
            "segments": [a["segment"] for a in e["annotations"]],
            "duration": e["duration"],
        }
    with tempfile.TemporaryDirectory() as tmp:
        wt = write_wtalc(Path(tmp) / "Thumos14reduced", "Thumos14reduced", videos, dataset.THUMOS14_CLASSES)
        joint = wt / f"Thumos14reduced{wtalc.WTALC_FEATURES}"
        authors = Path(tmp) / "authors"
        db = {}
        for v, e in videos.items():
            sub = "val" if e["subset"] == "validation" else "test"
            out = authors / "thumos14" / "features" / sub
            out.mkdir(parents=True, exist_ok=True)
            np.save(out / f"{v}_rgb.npy", e["features"][:, :1024])
            np.save(out / f"{v}_flow.npy", e["features"][:, 1024:])
            db[v] = {"subset": sub, "duration": e["duration"], "annotations": ann[v]["annotations"]}
        (authors / "thumos14" / "annotations.json").write_text(json.dumps(db))
        del videos
        size = joint.stat().st_size
        print(f"{len(names)} videos, {size / 2**30:.2f} GiB JOINT file (Python-2-style pickle), page cache warm")

        def peak(code: str) -> tuple[float, float]:
            """(wall s, peak RSS GiB) of `code` in a fresh interpreter. VmHWM, not ru_maxrss: Linux carries
            ru_maxrss over from the forking parent (this process, which holds the features)."""
            wrapped = f"import time; t = time.perf_counter()\n{code}\nwall = time.perf_counter() - t\n" + (
                "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
                "print(wall, hwm)"
            )
            out = subprocess.run([sys.executable, "-c", wrapped], cwd=ROOT, capture_output=True, text=True, check=True)
            wall, kib = out.stdout.split()[-2:]
            return float(wall), int(kib) / 2**20

        flags = "'--num_iter', '1', '--eval_iter', '1', '--num_seg', '16', '--batch_size', '2', '--no_progress'"
        run = "import main; main.main(['--data_path', {!r}, '--save_path', {!r}, " + flags + ", '--device', 'cpu'])"
        read = f"import wtalc; wtalc.read_wtalc_features({str(joint)!r}, progress=False)"
        rows = [
            ("import dataset (baseline)", peak("import dataset")),
            ("read_wtalc_features (restricted unpickler)", peak(read)),
            ("import main (baseline)", peak("import main")),
            ("main.py 1 step + test pass, W-TALC layout", peak(run.format(str(wt), os.path.join(tmp, "o1")))),
            ("main.py 1 step + test pass, authors' layout", peak(run.format(str(authors), os.path.join(tmp, "o2")))),
        ]
        for name, (wall, gib) in rows:
            print(f"{name:<45} {wall:8.1f} s  peak RSS {gib:6.2f} GiB")

        # The data path alone, in this process, A/B interleaved (medians of 3): both splits loaded and checked (the
        # W-TALC file re-read each time), then one pass of S = 750 training items over the training split.
        def load(data: Path) -> list:
            wtalc._joint_cache.clear()
            return [dataset.load_split(data, "thumos14", s, progress=False) for s in ("train", "test")]

        def epoch(split) -> None:
            ds = dataset.FeatureDataset(split, 750, "train")
            for v in range(len(ds)):
                ds[(v, v)]

        times: dict[str, list[float]] = {}
        for _ in range(3):
            for name, data in (("authors' layout", authors), ("W-TALC layout", wt)):
                t0 = time.perf_counter()
                train, _ = load(data)
                t1 = time.perf_counter()
                epoch(train)
                t2 = time.perf_counter()
                times.setdefault(f"load_split train+test, {name}", []).append(t1 - t0)
                times.setdefault(f"train items S=750, one epoch, {name}", []).append(t2 - t1)
        for name, ts in times.items():
            print(f"{name:<45} {sorted(ts)[1]:8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)})")


@section("train")
def bench_train(args: argparse.Namespace) -> None:
    """Whole training runs end to end (train.train: data load, 2000 steps, 20 evaluations) on synthetic features of the
    real datasets' sizes: THUMOS14 (200 training videos of ~1,500 snippets, 210 test videos; batch 32 × 750 snippets)
    and ActivityNet 1.3 (10,000 training videos of ~150 snippets, 4,900 validation videos; batch 128 × 80, pooled
    heads). Training features are held on the device (--preload: one float32 [ΣL, 2048] tensor; a step gathers its
    batch there, no feature crosses host → device); test videos are memory-mapped (page cache) one at a time.
    --scale F keeps a fraction F of the videos and steps (at least 2 videos, 1 step; still 20 evaluations where the
    steps allow), to run on a CPU."""
    import json
    import tempfile

    import numpy as np

    import main as acr
    import train
    from utils import reproducible

    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    shapes = [  # name, training / test videos, mean L, class count, (train, test) subset and feature folder names
        ("thumos14", 200, 210, 1500, 20, ("val", "test"), "thumos14/features/{}", "thumos14/annotations.json"),
        (
            "activitynet1.3",
            10000,
            4900,
            150,
            200,
            ("training", "validation"),
            "activitynet/features/{}",
            "activitynet/annotations_1.3.json",
        ),
    ]
    rows = []
    for name, n_train, n_test, mean_len, n_cls, subsets, feat_dir, ann_file in shapes:
        n_train, n_test = (max(2, round(n * args.scale)) for n in (n_train, n_test))
        steps = max(1, round(2000 * args.scale))
        eval_iter = max(1, steps // 20)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            bank = rng.random((2 * mean_len + 1, 1024), dtype=np.float32)  # rows shared by all files: fast to write
            annotations = {}
            for subset, count in zip(subsets, (n_train, n_test), strict=True):
                folder = Path(tmp) / feat_dir.format(subset)
                folder.mkdir(parents=True)
                for i in range(count):
                    video = f"video_{subset}_{i:07d}" if name == "thumos14" else f"v_{subset[:3]}{i:07d}"
                    L = int(rng.integers(mean_len // 2, 3 * mean_len // 2 + 1))
                    for m in ("rgb", "flow"):
                        start = int(rng.integers(0, len(bank) - L))
                        np.save(folder / f"{video}_{m}.npy", bank[start : start + L])
                    seconds = L * 16 / 25
                    segments = np.sort(rng.uniform(0, seconds, (int(rng.integers(1, 4)), 2)), axis=1)
                    labels = [f"class{c:03d}" for c in rng.integers(0, n_cls, len(segments))]
                    annotations[video] = {
                        "subset": subset,
                        "duration": seconds,
                        "annotations": [
                            {"label": c, "segment": s.tolist()} for c, s in zip(labels, segments, strict=True)
                        ],
                    }
            # a video of no split holding every class once: the class list (all subsets) has n_cls at any --scale
            every = [{"label": f"class{c:03d}", "segment": [0.0, 1.0]} for c in range(n_cls)]
            annotations["all_classes"] = {"subset": "none", "duration": 2.0, "annotations": every}
            (Path(tmp) / ann_file).write_text(json.dumps(annotations))
            build = time.perf_counter() - t0
            argv = ["--data_path", tmp, "--data_name", name, "--save_path", f"{tmp}/out", "--device", args.device]
            argv += ["--num_iter", str(steps), "--eval_iter", str(eval_iter), "--preload", "--no_progress"]
            if name == "thumos14":
                argv.append("--no_ambiguous")  # synthetic test videos: no Ambiguous segments exist for them
            cfg = acr.make_config(argv)
            with reproducible(device):
                t0 = time.perf_counter()
                summary = train.train(cfg, device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                total = time.perf_counter() - t0
            s = summary.seconds
            evals = -(-steps // eval_iter)
            rows.append(
                (name, n_train, n_test, steps, cfg.batch_size, cfg.num_seg, evals, build, s["load"], s["train"],
                 1e3 * s["train"] / steps, s["evaluate"], s["evaluate"] / evals, total)
            )  # fmt: skip
    print(f"\ntrain section, device {args.device}, scale {args.scale}: features preloaded on the device")
    head = ["dataset", "train videos", "test videos", "steps", "batch", "S", "evals", "build s", "load s", "train s"]
    head += ["ms/step", "eval s", "s/eval", "run total s"]
    from utils import format_table

    cells = [[r[0], *map(str, r[1:7]), *(f"{v:.1f}" for v in r[7:])] for r in rows]
    print(format_table(head, cells))
    print("run total = load (validate files, preload) + train + evaluate, measured around train.train; build not in it")


@section("record")
def bench_record(args: argparse.Namespace) -> None:
    """The record of a run (record.py) against a training step at the THUMOS14 shape (N32 T750 C20; --quick: N4 T100),
    on the chosen device. Per step: the gradient norm and the in-place copies into StepLog, timed interleaved with
    whole training steps (train.train_step: forward, losses, backward, fused Adam, as main.py runs it). Per
    evaluation: Record.evaluation (the per-step and per-class CSVs rewritten whole, TensorBoard events, the curves
    PNG) at the last evaluation of a THUMOS14 run (2000 steps of history, 20 evaluations, 20 classes), shared over
    the --eval_iter 100 steps before it. Once per run: Record.start (config file with the data fingerprint,
    TensorBoard's writer) on a small demo dataset."""
    import contextlib
    import io
    import tempfile

    import numpy as np

    import config
    import dataset
    import demo
    import record
    import train
    from model import ACRNet

    dev = torch.device(args.device)
    n, t = (4, 100) if args.quick else (32, 750)
    classes = dataset.THUMOS14_CLASSES
    torch.manual_seed(0)
    model = ACRNet(len(classes)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2000, eta_min=0.0)
    state = train.TrainState(model, opt, sched, loss_sum=torch.zeros((), device=dev))
    x = torch.randn(n, t, 2048, device=dev)
    y = torch.zeros(n, len(classes), device=dev)
    y[:, 0] = 1
    repeat = 3 if args.quick else 5
    log = record.StepLog(2 * repeat + 4, dev)
    loss, parts = torch.ones((), device=dev), {k: torch.ones((), device=dev) for k in ("cls", "gce_rgb", "gce_flow")}

    def step() -> None:
        train.train_step(state, x, y, 0.1)

    def record_step() -> None:  # what train_step adds with a StepLog: on the gradients the last step left
        log.add(state.step, loss, parts, record.grad_norm(model), opt.param_groups[0]["lr"])

    med = interleaved_medians({"step": step, "record": record_step}, repeat, dev.type)

    with tempfile.TemporaryDirectory() as tmp:
        data = demo.make_demo(Path(tmp) / "data", seed=0, max_train=4, max_test=2)
        cfg = config.Config(data_path=str(data), save_path=f"{tmp}/run", num_iter=2000, eval_iter=100)
        Path(cfg.save_path).mkdir()
        splits = {s: dataset.load_split(data, "thumos14", s, progress=False) for s in ("train", "test")}
        tious = dataset.DATASETS["thumos14"].tiou_thresholds
        header = ["step", "loss", "test_acc", *(f"mAP@{v:.2f}" for v in tious), "mAP@AVG"]
        rng = np.random.default_rng(0)
        rows = [[100 * (i + 1), 1.0, 0.5, *rng.random(len(tious)).tolist(), 0.4] for i in range(20)]
        history = [[str(k), *(str(v) for v in rng.random(6)), f"{rng.random():.4f}"] for k in range(1, 1901)]
        per_class = [[str(100 * (e + 1)), c, *map(str, rng.random(8))] for e in range(19) for c in classes]
        class_ap = rng.random((len(classes), len(tious)))
        evaluation, start = [], []
        with record.Record(cfg) as rec, contextlib.redirect_stdout(io.StringIO()):  # (its "record of the run" lines)
            for _ in range(repeat + 1):
                t0 = time.perf_counter()
                rec.start(splits, "test", 0, dev)  # (a new run: nothing to read back)
                start.append(time.perf_counter() - t0)
                rec.classes, rec.step_rows, rec.class_rows = list(classes), list(history), list(per_class)
                for k in range(1901, 2001):
                    rec.steps.add(k, loss, parts, loss, 1e-4)
                t0 = time.perf_counter()
                rec.evaluation(header, rows, class_ap, 2000)
                evaluation.append(time.perf_counter() - t0)
                rec.writer.close()
        per_eval = sorted(evaluation[1:])[repeat // 2]  # the first round imports matplotlib and TensorBoard
        per_run = sorted(start[1:])[repeat // 2]

    step_ms, rec_ms, eval_ms = 1e3 * med["step"], 1e3 * med["record"], 1e3 * per_eval / cfg.eval_iter
    print(f"THUMOS14 N{n} T{t} C{len(classes)}, {dev.type}: medians of {repeat} interleaved rounds")
    print(f"  {'training step (train.train_step)':<48} {step_ms:10.1f} ms")
    print(f"  {'record per step (grad norm, StepLog copies)':<48} {rec_ms:10.2f} ms  {100 * rec_ms / step_ms:6.3f} %")
    print(
        f"  {'record per evaluation (CSVs, TensorBoard, PNG)':<48} {1e3 * per_eval:10.1f} ms  = {eval_ms:.2f} ms "
        f"per step at --eval_iter 100: {100 * eval_ms / step_ms:6.3f} %"
    )
    print(f"  {'record total per step':<48} {rec_ms + eval_ms:10.2f} ms  {100 * (rec_ms + eval_ms) / step_ms:6.3f} %")
    print(
        f"  once per run (Record.start: config file, fingerprint of a 6-video set, TensorBoard): {1e3 * per_run:.0f} ms"
    )
    print(f"  {torch.get_num_threads()} threads, {_load_note()}")


@section("json")
def bench_json(args: argparse.Namespace) -> None:
    """utils.read_json (duplicate keys refused, non-finite numbers kept as written) against a plain json.loads of the
    same text (the baseline), on an ActivityNet-sized predictions file: 4926 videos x 100 predictions (--quick: 500)."""
    import json
    import tempfile

    import numpy as np

    from utils import read_json

    rng = np.random.default_rng(0)
    n_videos = 500 if args.quick else 4926
    preds = {
        f"v_{i:011d}": [
            {"label": "Long jump", "score": float(s), "segment": [float(a), float(a + d)]}
            for s, a, d in rng.uniform(0, 100, (100, 3))
        ]
        for i in range(n_videos)
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.json"
        path.write_text(json.dumps({"results": preds}))
        times = interleaved_medians(
            {"json.loads": lambda: json.loads(path.read_text()), "read_json": lambda: read_json(path)}, 3, "cpu"
        )
        size = path.stat().st_size / 1e6
    base = times["json.loads"]
    print(f"{size:.1f} MB, {n_videos * 100} predictions; {_load_note()}")
    for name, t in times.items():
        print(f"  {name:<10} {t:6.2f} s  {t / base:4.2f}x the plain json.loads")


def _synthetic_predictions(ann: dict, videos: list[str], classes: list[str], per_video: int | None, seed: int):
    """Predictions for `videos`: 3 jittered copies of each instance (its label, sometimes another), then random
    segments (the video's labels mostly) up to `per_video` per video (None: 4 copies + 5 per instance); distinct
    random scores → {video: [{"label", "score", "segment"}]}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for v in videos:
        duration, anns = ann[v]["duration"], ann[v]["annotations"]
        labels = [a["label"] for a in anns] or classes
        rows = []
        for a in anns:
            s, e = a["segment"]
            for _ in range(3 if per_video else 4):
                j = rng.normal(0, 0.25 * (e - s) + 0.1, 2)
                label = a["label"] if rng.random() < 0.9 else classes[int(rng.integers(len(classes)))]
                rows.append((label, s + j[0], max(s + j[0], e + j[1])))
        n_random = (per_video - len(rows)) if per_video else 5 * len(anns)
        for _ in range(max(0, n_random)):
            start = rng.uniform(0, duration)
            label = (
                labels[int(rng.integers(len(labels)))] if rng.random() < 0.7 else classes[rng.integers(len(classes))]
            )
            rows.append((label, start, min(duration, start + rng.exponential(0.1 * duration))))
        rows = rows[:per_video] if per_video else rows
        out[v] = [{"label": str(l), "score": 0.0, "segment": [float(s), float(e)]} for l, s, e in rows]
    flat = [p for v in videos for p in out[v]]
    for p, score in zip(flat, rng.permutation(len(flat)) / len(flat), strict=True):
        p["score"] = float(score)
    return out


def _largest_relative_difference(a: object, b: object) -> float:
    """Two diagnosis dicts of the same schema → max |a − b| / max(|a|, |b|) over their numbers (inf if their
    structure or None placements differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return float("inf")
        return max([_largest_relative_difference(a[k], b[k]) for k in a], default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf")
        return max([_largest_relative_difference(x, y) for x, y in zip(a, b, strict=True)], default=0.0)
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return 0.0 if a == b else float("inf")
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


@section("diagnose")
def bench_diagnose(args: argparse.Namespace) -> None:
    """DETAD's three analyses (diagnose.diagnose, from in-memory predictions) on a THUMOS14 test-shaped run (210 real
    test videos' ground truth, ~30k synthetic predictions; vs the loop reference tests/reference_detad.py in the same
    run) and on ActivityNet 1.3 validation (4,728 real videos' ground truth, 100 predictions each)."""
    import gzip
    import json
    import tempfile
    import warnings

    import diagnose
    from dataset import class_names, read_annotations, split_videos

    tests_on_path()
    from reference_detad import characteristics
    from reference_detad import diagnose as reference

    # THUMOS14 test: the evaluated 210 videos (the protocol's 3 dropped ones left out)
    ann = read_annotations(TEST_DATA / "thumos14" / "annotations.json")
    videos, _ = split_videos(ann, "thumos14", "test")
    classes = class_names(ann)
    preds = _synthetic_predictions(ann, videos, classes, None, seed=0)
    gt = {v: ann[v] for v in videos}
    n_pred = sum(map(len, preds.values()))
    t_fast = timeit(lambda: diagnose.diagnose(gt, preds, "thumos14", "test"), repeat=5, warmup=1)
    out = diagnose.diagnose(gt, preds, "thumos14", "test")
    with tempfile.TemporaryDirectory() as tmp:
        t_files = timeit(lambda: diagnose.write_diagnosis(out, tmp, "bench"), repeat=1, warmup=1)
    n_ref = len(videos) if not args.quick else 30
    sub = videos[:n_ref]
    ref_gt = {"database": characteristics({v: ann[v] for v in sub}), "taxonomy": [], "version": "bench"}
    ref_preds = {"results": {v: preds[v] for v in sub}, "version": "bench", "external_data": {}}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(ref_gt, ref_preds, "thumos14", "test")
    t_ref = time.perf_counter() - t0
    t_fast_sub = timeit(lambda: diagnose.diagnose({v: ann[v] for v in sub}, ref_preds["results"], "thumos14", "test"))
    diff = _largest_relative_difference(diagnose.diagnose({v: ann[v] for v in sub}, ref_preds["results"], "thumos14",
                                                          "test"), expected)  # fmt: skip
    print(f"THUMOS14 test: {len(videos)} videos, {out['extra']['num_ground_truth']} instances, {n_pred} predictions")
    print(f"  diagnose (3 analyses)                 {t_fast:8.3f} s   (limit 2 s)")
    print(f"  diagnosis.json + 3 PNGs               {t_files:8.3f} s")
    n_ref_pred = sum(map(len, ref_preds["results"].values()))
    print(f"  reference loops, {len(sub)} videos ({n_ref_pred} predictions) {t_ref:8.2f} s; fast {t_fast_sub:.3f} s: "
          f"{t_ref / t_fast_sub:.0f}x; largest relative difference {diff:.3g}")  # fmt: skip

    # ActivityNet 1.3 validation: 100 predictions per video
    with gzip.open(TEST_DATA / "activitynet" / "annotations_1.3.json.gz", "rb") as f, tempfile.NamedTemporaryFile(
        suffix=".json"
    ) as tmp:  # fmt: skip
        tmp.write(f.read())
        tmp.flush()
        ann = read_annotations(tmp.name)
    videos = [v for v, e in ann.items() if e["subset"] == "validation"]
    if args.quick:
        videos = videos[:500]
    gt = {v: ann[v] for v in videos}
    preds = _synthetic_predictions(ann, videos, class_names(ann), 100, seed=1)
    n_pred = sum(map(len, preds.values()))
    t_anet = timeit(lambda: diagnose.diagnose(gt, preds, "activitynet", "validation"), repeat=3, warmup=1)
    out = diagnose.diagnose(gt, preds, "activitynet", "validation")
    print(f"ActivityNet 1.3 validation: {len(videos)} videos, {out['extra']['num_ground_truth']} instances, "
          f"{n_pred} predictions, 10 tIoUs")  # fmt: skip
    print(f"  diagnose (3 analyses)                 {t_anet:8.3f} s   (limit 30 s)")
    print(f"  average-mAP_N {100 * out['average_mAP_N']:.2f} %; JSON {len(json.dumps(out))} bytes")
    print(f"  {_load_note()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"which to run (default: all): {', '.join(SECTIONS)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--scale", type=float, default=1.0, help="train: fraction of the videos and steps to run")
    args = parser.parse_args()
    for name in args.sections or list(SECTIONS):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        print(f"\n=== {name} ({args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads) ===")
        SECTIONS[name](args)


if __name__ == "__main__":
    main()

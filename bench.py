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
SHARED_DATA = ROOT.parent / "shared" / "data"  # the real data beside the checkout (as tests/conftest.py)


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
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


# --- sections (each helper adds its own below this line; keep one function per section) ---


@section("main")
def bench_main(args: argparse.Namespace) -> None:
    """main.py: a training step (forward, loss, backward, Adam) with the foreach Adam baseline vs the fused Adam that
    main.py uses; and the test pass (SPEC §9–10) per video vs the bare forward passes over the same videos."""
    import tempfile

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
        split = acr.dataset.load_split(data, "thumos14", "test", progress=False)
        feats = acr.dataset.FeatureDataset(split, cfg.num_seg, mode="test")
        model.eval()

        @torch.no_grad()
        def forward_only() -> None:
            for i in range(len(feats)):
                out = model(feats[i][0].to(device)[None])
                out.seg_score.cpu()

        base = timeit(forward_only, repeat=3, device=device.type)
        full = timeit(lambda: acr.test_pass(model, split, cfg, device), repeat=3, device=device.type)
        v = len(split)
        print(
            f"test pass, {v} demo videos (T' <= {cfg.num_seg}): forward only {1e3 * base / v:.1f} ms/video, "
            f"full (forward + detect + mAP) {1e3 * full / v:.1f} ms/video, overhead {full / base:.2f}x"
        )


@section("extract")
def bench_extract(args: argparse.Namespace) -> None:
    """Frames/s of each extraction stage (decode, TV-L1, I3D RGB, I3D flow) and end to end (extract.extract_video).

    I3D is timed on random uint8 frames through extract.SnippetRunner (crop, transfer, [-1, 1], forward), so it runs
    where PyAV / OpenCV are missing; the video stages need them and ../shared/data/videos/v_GGSY1Qvo990.mp4.
    """
    import itertools

    import numpy as np

    from extract import SnippetRunner
    from i3d import InceptionI3d, load_i3d

    device = torch.device(args.device)
    rgb_path = SHARED_DATA / "i3d" / "rgb_scratch_kinetics400.pt"
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
    src = SHARED_DATA / "videos" / "v_GGSY1Qvo990.mp4"
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
    """Frames/s of decode+resize (video.iter_frames) and TV-L1 flow (SPEC §12.3 parameters), 1 core and all cores."""
    import os
    import tempfile
    from fractions import Fraction

    import av
    import cv2

    import video

    src = SHARED_DATA / "videos" / "v_GGSY1Qvo990.mp4"
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


@section("postprocess")
def bench_postprocess(args: argparse.Namespace) -> None:
    """THUMOS14-scale post-processing (postprocess.detect) + ambiguous filter + mAP (evaluate.detection_map) vs the
    slow loop references of tests/, on synthetic smooth CAS curves over the 210 real test videos' durations."""
    import numpy as np

    from dataset import DATASETS, class_names, read_ambiguous, read_annotations, split_videos
    from evaluate import detection_map
    from postprocess import detect, filter_ambiguous

    tests_on_path()
    from reference_evaluate import ref_detection_map
    from reference_postprocess import ref_detect, ref_filter_ambiguous

    info = DATASETS["thumos14"]
    ann = read_annotations(SHARED_DATA / "thumos14" / "annotations.json")
    videos, _ = split_videos(ann, "thumos14", "test")
    if args.quick:
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

    def run(det_fn, filter_fn, map_fn, tiou=info.tiou_thresholds):
        predictions = {}
        for v, act, seg, L in inputs:
            dets = det_fn(act, seg, L, **opts)
            predictions[v] = [{"label": classes[c], "score": sc, "segment": [s, e]} for c, s, e, sc in dets]
        predictions = filter_fn(predictions, ambiguous)
        return predictions, np.asarray(map_fn(ground_truth, predictions, tiou))

    def fast():
        return run(detect, filter_ambiguous, detection_map)

    t_fast = timeit(fast, repeat=3, warmup=1)
    t0 = time.perf_counter()
    slow_preds, slow_map = run(ref_detect, ref_filter_ambiguous, ref_detection_map)
    t_slow = time.perf_counter() - t0
    fast_preds, fast_map = fast()

    # stage split of the fast path (post-processing vs evaluation)
    t_det = timeit(lambda: [detect(a, s, L, **opts) for _, a, s, L in inputs], repeat=3, warmup=0)
    t_eval = timeit(lambda: detection_map(ground_truth, fast_preds, info.tiou_thresholds), repeat=3, warmup=0)

    flat = [(v, p) for v in videos for p in fast_preds[v]]
    flat_ref = [(v, p) for v in videos for p in slow_preds[v]]
    same = len(flat) == len(flat_ref) and all(
        (v, p["label"], p["segment"]) == (w, q["label"], q["segment"]) and abs(p["score"] - q["score"]) <= 1e-9
        for (v, p), (w, q) in zip(flat, flat_ref, strict=True)
    )
    n_class = sum(len({p["label"] for p in fast_preds[v]}) for v in videos)
    n_raw = sum(len(detect(a, s, L, **opts)) for _, a, s, L in inputs)
    per_class = n_raw / max(n_class, 1)
    print(f"{len(videos)} videos, {n_class} predicted (video, class) pairs, {n_raw} detections ({per_class:.0f} per")
    print(f"predicted class), {len(flat)} after the ambiguous filter")
    print(f"{'path':<34}{'seconds':>10}")
    print(f"{'slow references (tests/)':<34}{t_slow:>10.2f}")
    print(f"{'fast: detect + filter + mAP':<34}{t_fast:>10.3f}   ({t_det:.3f} detect, {t_eval:.3f} mAP)")
    print(f"speed-up {t_slow / t_fast:.1f}x end to end")
    print(f"predictions identical (1e-9): {same}; mAP identical (1e-12): {np.allclose(fast_map, slow_map, 0, 1e-12)}")
    cols = " ".join(f"{t:.1f}" for t in info.tiou_thresholds)
    print(f"mAP@{cols} AVG: " + " ".join(f"{100 * m:.2f}" for m in [*fast_map, fast_map.mean()]))


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int, device: str) -> dict[str, float]:
    """Median wall time (s) of each fn, called in turn within each round (after one warm-up round), so a machine's
    changing load hits every candidate alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rnd in range(repeat + 1):
        for name, fn in fns.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            if rnd:
                times[name].append(time.perf_counter() - t0)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def _load_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"load average {load:.1f} on {os.cpu_count()} cores"


@section("model")
def bench_model(args: argparse.Namespace) -> None:
    """ACRNet's own steps, SPEC §3–§6 (clustering, refining, video scores, both losses, their backward pass), against
    the authors' implementation as written (tests/authors_acrnet.py: §3 a T-step loop of tensor ops, §4 a Python loop
    over classes and videos), same inputs, interleaved rounds, medians."""
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

        def authors() -> None:
            logits, streams = cas.detach().requires_grad_(), aas.detach().requires_grad_()
            mask = A.refine_mask(seg, A.temporal_clustering(seg), logits)
            act, bkg = A.video_scores(seg, mask, logits)
            out = {"act_score": act, "bkg_score": bkg, "seg_mask": mask, "aas_rgb": streams[:, :, 0]}
            loss = A.total_loss({**out, "aas_flow": streams[:, :, 1]}, label)
            loss.backward()
            results["authors"] = (loss.detach(), mask)

        for threads in thread_counts:
            torch.set_num_threads(threads)
            med = interleaved_medians({"ours": ours, "authors": authors}, 3 if args.quick else 5, dev.type)
            same = (results["ours"][0] - results["authors"][0]).abs().item() < 1e-5
            same_mask = torch.equal(results["ours"][1], results["authors"][1])
            print(
                f"{name:<15} {f'N{n} T{t} C{c}':<14} {threads:>7} {med['ours'] * 1e3:9.1f} "
                f"{med['authors'] * 1e3:11.1f} {med['authors'] / med['ours']:6.1f}x  {same} / {same_mask}"
            )

    # PyTorch's default threads, and one thread (on a busy machine every multi-threaded op waits for a free core)
    default_threads = torch.get_num_threads()
    thread_counts = [default_threads] + ([1] if default_threads > 1 and dev.type == "cpu" else [])
    print(
        f"{'config':<15} {'shape':<14} {'threads':>7} {'ours ms':>9} {'authors ms':>11} {'ratio':>7}  same loss / masks"
    )
    for config in configs:
        compare(*config)
    torch.set_num_threads(default_threads)
    print(f"forward + losses + backward of §3–§6 from network outputs; {_load_note()}")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"which to run (default: all): {', '.join(SECTIONS)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    for name in args.sections or list(SECTIONS):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        print(f"\n=== {name} ({args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads) ===")
        SECTIONS[name](args)


if __name__ == "__main__":
    main()

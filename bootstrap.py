"""Bootstrap confidence intervals of detection mAP over the test videos, and paired comparisons of methods.

    counts = resample_counts(n_videos, 1000, seed=0)         # [B, V] copies of each test video per resample
    maps = resampled_maps(matches, counts)                    # [B, n_tiou] mAP of each resample
    low, high = percentile_interval(maps)                     # 95 % interval per tIoU

A resample draws V test videos with replacement (a multinomial count per video); each drawn copy brings its own
ground truth and predictions, so the matched flags of evaluate.match serve every resample: only AP is recomputed,
over the predictions weighted by their video's count (evaluate.class_ap). A class without ground truth in a
resample is left out of that resample's mean, as the evaluator leaves out classes without ground truth. Several
methods scored on the same videos share the resamples (paired), so their differences vary only with the videos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluate import Matches, class_ap

LEVEL = 0.95  # the interval's coverage


def resample_counts(n_videos: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """[B, V] int64: how often each of V videos is drawn in each of B resamples of V draws with replacement."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_videos, np.full(n_videos, 1.0 / n_videos), size=n_resamples).astype(np.int64)


def resampled_maps(matches: Matches, counts: np.ndarray) -> np.ndarray:
    """mAP per resample and tIoU → [B, n_tiou] (NaN for a resample with no ground truth at all)."""
    ap = class_ap(matches, counts)  # [B, C, n_th], NaN rows: class absent from the resample
    present = ~np.isnan(ap[:, :, 0])
    total = np.where(present[:, :, None], ap, 0.0).sum(axis=1)
    n = present.sum(axis=1)[:, None]
    return np.divide(total, n, out=np.full(total.shape, np.nan), where=n > 0)


def with_avg(maps: np.ndarray) -> np.ndarray:
    """maps [..., n_tiou] → [..., n_tiou + 1]: mAP@AVG (the mean over the tIoUs) appended as the last column."""
    return np.concatenate([maps, maps.mean(axis=-1, keepdims=True)], axis=-1)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """samples [B, ...] → (low, high) [...]: the (1 - level)/2 and (1 + level)/2 percentiles over B (NaN skipped)."""
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    low, high = np.nanpercentile(samples, q, axis=0)
    return low, high


@dataclass(frozen=True)
class Comparison:
    """Method a minus method b in mAP@AVG: observed, its interval over the shared resamples, and the share of
    resamples where the order of the two flips (the difference has the other sign, or is 0, when the observed one
    is not 0)."""

    a: str
    b: str
    difference: float
    low: float
    high: float
    flip_share: float


def compare(
    names: Sequence[str], avgs: np.ndarray, resampled_avgs: np.ndarray, level: float = LEVEL
) -> list[Comparison]:
    """avgs [M] observed mAP@AVG of M methods, resampled_avgs [B, M] on the same resamples → every pair (i < j)."""
    out = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            diff = float(avgs[i] - avgs[j])
            d = resampled_avgs[:, i] - resampled_avgs[:, j]
            d = d[~np.isnan(d)]
            low, high = percentile_interval(d[:, None], level)
            flips = float(np.mean(d * np.sign(diff) <= 0)) if diff != 0 and d.size else float("nan")
            out.append(Comparison(names[i], names[j], diff, float(low[0]), float(high[0]), flips))
    return out

"""Shared test fixtures: the real annotation files shipped in tests/data, and real videos / I3D weights found through
the ACRNET_TEST_MEDIA environment variable.

- `real_annotations`: a folder laid out as tests/data/README.md says (thumos14/, activitynet/, wtalc/), with the
  ActivityNet files decompressed; always available, so every test that needs real annotations runs in a plain clone.
- `real_media`: the folder named by ACRNET_TEST_MEDIA, holding `videos/` (real clips) and `i3d/` (Kinetics-400 I3D
  RGB weights and label map); tests that need it skip, saying which variable and which files, when it is not set.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT))  # flat layout: tests import `model`, `dataset`, ... directly

MEDIA_VARIABLE = "ACRNET_TEST_MEDIA"
MEDIA_FILES = (
    "videos/v_GGSY1Qvo990.mp4",
    "videos/v_ZNVhz7ctTq0.mp4",
    "videos/plastering.avi",
    "videos/kinetics_arm_wrestling.mp4",
    "i3d/rgb_scratch_kinetics400.pt",
    "i3d/kinetics400_label_map.txt",
)
_DEV_MEDIA = ROOT.parent / "shared" / "data"  # the developers' machines keep the media beside the checkout


def media_folder() -> Path | None:
    """The real-media folder: $ACRNET_TEST_MEDIA, else the developers' folder beside the checkout, else None."""
    given = os.environ.get(MEDIA_VARIABLE)
    if given:
        return Path(given)
    return _DEV_MEDIA if _DEV_MEDIA.is_dir() else None


@pytest.fixture(scope="session")
def real_annotations(tmp_path_factory) -> Path:
    """tests/data with its gzipped ActivityNet annotations decompressed, in a session temp folder (read-only use)."""
    out = tmp_path_factory.mktemp("real_annotations")
    for src in TEST_DATA.rglob("*"):
        if src.is_dir() or src.name == "README.md":
            continue
        dst = out / src.relative_to(TEST_DATA)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".gz":
            with gzip.open(src, "rb") as f, open(dst.with_suffix(""), "wb") as g:
                shutil.copyfileobj(f, g)
        else:
            shutil.copyfile(src, dst)
    return out


@pytest.fixture(scope="session")
def real_media() -> Path:
    """The folder of real videos and I3D weights; skips (naming the variable and the files) when it is absent."""
    folder = media_folder()
    if folder is None or not folder.is_dir():
        pytest.skip(
            f"needs real videos and I3D weights: set {MEDIA_VARIABLE} to a folder holding {', '.join(MEDIA_FILES)} "
            "(see tests/data/README.md)"
        )
    missing = [f for f in MEDIA_FILES if not (folder / f).is_file()]
    if missing:
        pytest.skip(f"{MEDIA_VARIABLE}={folder} lacks {', '.join(missing)} (see tests/data/README.md)")
    return folder

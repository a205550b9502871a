import json

import numpy as np
import pytest

from utils import atomic_json_dump, atomic_np_save, atomic_path


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_json_dump({"a": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind


def test_atomic_np_save_exact_name(tmp_path):
    target = tmp_path / "v_rgb.npy"
    atomic_np_save(np.arange(6, dtype=np.float32).reshape(3, 2), target)
    assert np.load(target).shape == (3, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["v_rgb.npy"]

"""The README's two commands are what CI runs, word for word (.ci/run)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Two commands") :]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[:2]  # setup + demo; tests + lint
    readme_lines = [line for block in blocks for line in block.strip().splitlines()]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    setup = {"#!/usr/bin/env bash", "set -euo pipefail", 'cd "$(dirname "$0")/.."'}
    ci_lines = [line for line in ci if line and not line.startswith("#") and line not in setup]
    assert ci_lines == readme_lines
    assert "pip install -r requirements-dev.txt" in readme_lines[1], "the test command installs the dev set first"

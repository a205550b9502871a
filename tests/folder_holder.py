"""A process that holds an output folder as a run of this project does (utils.claim_output_dir), for the tests of
issue 20: a second run into a held folder, a holder killed with SIGKILL, runs starting at the same moment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
sys.path.insert(0, {root!r})
import utils
sys.argv = {argv!r}  # what the holder file records as the command
time.sleep(max(0.0, {start!r} - time.time()))
try:
    utils.claim_output_dir({folder!r}, "--save_path", job={job!r}, part={part!r})
except utils.InputError as e:
    print("busy", e, flush=True)
    sys.exit(2)
print("held", flush=True)
time.sleep({hold!r})
"""


def holder(folder: Path, job=None, part=None, *, start: float = 0.0, hold: float = 120.0) -> subprocess.Popen:
    """A process that claims `folder` (at time `start`, if given) and holds it for `hold` seconds."""
    argv = ["main.py", "--save_path", str(folder)]
    code = HOLD.format(root=str(ROOT), argv=argv, start=start, folder=str(folder), job=job, part=part, hold=hold)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def held(proc: subprocess.Popen) -> subprocess.Popen:
    assert proc.stdout.readline().strip() == "held"
    return proc

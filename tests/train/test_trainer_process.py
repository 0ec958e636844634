"""The trainer process dies with its parent (SIGKILL, SIGTERM) and its log keeps every attempt."""

from __future__ import annotations

import os

import pytest

from finbench.data import raw as D

ROOT = D.settings.ROOT

_STAND_IN = """
import os, subprocess, sys, time
out = sys.argv[1]
open(os.path.join(out, "child.pid"), "w").write(str(os.getpid()))
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(os.path.join(out, "grandchild.pid"), "w").write(str(sleeper.pid))
for step in range(int(sys.argv[2])):
    print(f"step {step}", flush=True)
    time.sleep(0.1)
sleeper.kill()
"""

_PARENT = """
import os, sys
from pathlib import Path
from finbench.train import launch
out, steps = sys.argv[1], sys.argv[2]
cmd = [sys.executable, "-c", sys.argv[3], out, steps]
launch.run_logged(cmd, Path(out) / "logs" / "train.log", dict(os.environ), echo=True, grace=5)
"""


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _start_parent(tmp_path, steps):
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path), str(steps), _STAND_IN],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition, timeout=60.0):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not os.path.exists("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_trainer_dies_with_its_parent_and_the_log_keeps_the_attempt(how, tmp_path):
    import signal

    log = tmp_path / "logs" / "train.log"
    parent = _start_parent(tmp_path, steps=6000)
    try:
        assert _wait_for(lambda: (tmp_path / "grandchild.pid").is_file() and log.is_file() and "step 3" in log.read_text())
        child = int((tmp_path / "child.pid").read_text())
        grandchild = int((tmp_path / "grandchild.pid").read_text())
        assert _alive(child) and _alive(grandchild)
        parent.send_signal(getattr(signal, how))
        parent.wait(timeout=30)
        assert _wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=30), (
            "the stand-in trainer (or its worker) outlived its parent"
        )
    finally:
        if parent.poll() is None:
            parent.kill()
    text = log.read_text()
    assert text.count("===== attempt 1 ") == 1 and "step 3" in text
    if how == "SIGTERM":
        assert "----- interrupted" in text
    # The next attempt appends: the killed attempt's output is still there.
    (tmp_path / "grandchild.pid").unlink()
    again = _start_parent(tmp_path, steps=2)
    assert again.wait(timeout=60) == 0
    text = log.read_text()
    assert "step 3" in text.split("===== attempt 2 ")[0]
    assert "step 1" in text.split("===== attempt 2 ")[1] and "----- exit 0" in text

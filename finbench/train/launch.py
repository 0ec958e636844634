"""Launching Axolotl: the command for the recipe's hardware profile (python, accelerate, torchrun,
Ray; one node or many), the subprocess environment, and running a step with its output appended to
a log while the trainer's whole process tree dies with us (a watchdog and PR_SET_PDEATHSIG), even
when `finbench train` is killed with -9."""

from __future__ import annotations

import datetime as _dt
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finbench.core import settings

if TYPE_CHECKING:
    from finbench.train.recipe import Recipe

logger = logging.getLogger(__name__)


class TrainError(RuntimeError):
    """A training subprocess failed; the message names the command and its log."""


def launcher_command(recipe: Recipe, config_path: Path) -> list[str]:
    """`axolotl train` with the launcher for the hardware profile (Axolotl's own launchers)."""
    hw = recipe.hardware
    base = [*axolotl_command(), "train", str(config_path)]
    profile, launcher = hw["profile"], hw["launcher"]
    if profile == "cpu":
        return [*base, "--launcher", "python"]  # one process; no accelerate/torchrun needed
    if launcher == "ray":
        return [*base, "--launcher", "python"]  # `use_ray: true` in the config: Ray Train workers
    if profile == "gpu":
        args = ["--num_processes", "1"] if launcher == "accelerate" else ["--nproc_per_node", "1"]
        return [*base, "--launcher", launcher, "--", *args]
    per_node = hw.get("gpus_per_node")
    nodes = hw["num_nodes"]
    s = settings.current()  # NODE_RANK / MASTER_ADDR / MASTER_PORT of this node come with the settings
    if launcher == "accelerate":
        args = ["--num_machines", str(nodes)]
        if per_node:
            args += ["--num_processes", str(per_node * nodes)]
        if profile == "multi_node":
            args += [
                "--machine_rank",
                s.node_rank or "${NODE_RANK}",
                "--main_process_ip",
                s.master_addr or "${MASTER_ADDR}",
                "--main_process_port",
                s.master_port,
            ]
        else:
            args += ["--multi_gpu"]
    else:  # torchrun
        master = s.master_addr or "${MASTER_ADDR}"
        args = ["--nnodes", str(nodes), "--nproc_per_node", str(per_node or "gpu")]
        if profile == "multi_node":
            args += [
                "--node_rank",
                s.node_rank or "${NODE_RANK}",
                "--rdzv_endpoint",
                f"{master}:{s.master_port}",
            ]
    return [*base, "--launcher", launcher, "--", *args]


def axolotl_command() -> list[str]:
    return [sys.executable, "-m", "axolotl.cli.main"]


def subprocess_env(recipe: Recipe, base_model: str) -> dict[str, str]:
    # this process's environment with the settings value on top (FINBENCH_SETTINGS and the library
    # variables it carries), so Axolotl sees what the boundary resolved
    env = settings.current().child_env(os.environ)
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")  # Axolotl's telemetry is on by default
    env.setdefault("WANDB_MODE", "disabled")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if Path(base_model).is_absolute():
        env.setdefault("HF_HUB_OFFLINE", "1")  # a local model needs nothing from the hub
    # `axolotl train --launcher accelerate` runs `accelerate launch` from PATH: use this venv's.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


# A watchdog started beside every training subprocess: it blocks reading its stdin (a pipe the
# parent holds open) and, on EOF without "done" (the parent died, even by SIGKILL), stops the
# trainer's whole process group: SIGTERM, then SIGKILL after a grace period.
_WATCHDOG = """
import os, signal, sys, time
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
if sys.stdin.buffer.read().startswith(b"done"):
    sys.exit(0)
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        sys.exit(0)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            sys.exit(0)
        time.sleep(0.1)
"""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_GRACE_S = 30.0


def _die_with(parent: int) -> Any:
    """A preexec_fn (Linux): the child is SIGKILLed when the thread that started it dies, so a
    killed `finbench train` never leaves a trainer holding a GPU. A no-op where prctl is missing."""

    def preexec() -> None:
        os.setsid()  # its own process group: the parent stops the whole launcher tree at once
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _attempt_header(log: Path, cmd: list[str]) -> str:
    """'===== attempt N <time> $ cmd': N counts the attempts already in the (appended) log."""
    attempts = 0
    if log.is_file():
        with log.open("rb") as fh:
            attempts = sum(1 for line in fh if line.startswith(b"===== attempt "))
    stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return f"\n===== attempt {attempts + 1} {stamp} $ {' '.join(cmd)}\n"


def run_logged(
    cmd: list[str], log: Path, env: dict[str, str], *, echo: bool, grace: float = STOP_GRACE_S
) -> None:
    """Run `cmd` with its output APPENDED to `log` (written by the child itself, so a killed
    parent loses nothing), echoed to stdout when `echo`. The child dies with this process."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        fh.write(_attempt_header(log, cmd).encode())
        fh.flush()
        start = fh.tell()
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with(os.getpid()),  # noqa: PLW1509 (setsid + prctl only)
        )
    try:
        watchdog: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(proc.pid), str(grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:  # the trainer itself still dies with us (PR_SET_PDEATHSIG)
        logger.warning("no watchdog for the trainer's process group: %s", err)
        watchdog = None
    # SIGTERM / SIGHUP (a scheduler's stop, `kill`, a closed terminal) must stop the training
    # tree too, not orphan it.
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _raise_exit)
    try:
        rc = _follow(proc, log, start) if echo else proc.wait()
    except BaseException as err:
        # Interrupted (Ctrl-C, SIGTERM): stop the whole launcher tree (accelerate and torchrun
        # start workers); checkpoints stay for resuming.
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"\n----- interrupted ({type(err).__name__}); the trainer was stopped\n")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _release(watchdog)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"----- exit {rc}\n")
    if rc != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:])
        raise TrainError(f"`{' '.join(cmd[2:5])} ...` failed (exit {rc}); log: {log}\n{tail}")


def _follow(proc: subprocess.Popen, log: Path, start: int) -> int:
    """Echo what the child appends to `log` (from byte `start`) until it exits; its exit code."""
    import codecs
    import time

    decode = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with log.open("rb") as reader:
        reader.seek(start)
        while True:
            rc = proc.poll()
            chunk = reader.read()
            if chunk:
                sys.stdout.write(decode.decode(chunk))
                sys.stdout.flush()
            if rc is not None:
                sys.stdout.write(decode.decode(b"", final=True))
                return rc
            if not chunk:
                time.sleep(0.2)


def _release(watchdog: subprocess.Popen | None) -> None:
    """Tell the watchdog the trainer is finished (or already stopped) and let it exit."""
    if watchdog is None:
        return
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.write(b"done")
        watchdog.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        watchdog.wait(timeout=10)
    except subprocess.TimeoutExpired:
        watchdog.kill()


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


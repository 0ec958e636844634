"""Make stock `lm_eval --tasks finbench` find this project's tasks, from any directory.

lm-eval 0.4.13 discovers tasks only in its own folder and in `--include_path`; it has no plugin
entry point yet (upstream PR #4015 adds the `lm_eval.tasks` group, declared in pyproject.toml).
So `make install` writes a one-line `.pth` file into the environment's site-packages that calls
`install()` at interpreter start. `install()` only registers an import hook (stdlib, no lm-eval
import); when lm-eval's task manager module is first imported, `TaskManager.__init__` is wrapped so
that every TaskManager also scans `tasks/` and the generated group configs. A user's own
`--include_path` is kept and comes after ours, so it can still override a task. Tasks are scanned
afresh by every TaskManager, so a folder dropped into `tasks/` appears without reinstalling, and
it joins the `finbench` group and its `finbench_<kind>` subgroup automatically.

Set FINBENCH_LMEVAL_HOOK=0 to switch the hook off for one process.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import inspect
import sys
import sysconfig
from pathlib import Path

from finbench.core import settings
from finbench.core.files import write_atomic
from finbench.data.tasks import GENERAL_TASKS, group_configs, task_paths, write_group_configs  # noqa: F401

PTH_NAME = "finbench_lmeval.pth"
PTH_LINE = "import finbench.eval.lmeval_hook as _fb; _fb.install()\n"
_TARGET = "lm_eval.tasks.manager"

# Entry-point target for lm-eval versions with plugin discovery (upstream PR #4015).
TASK_PATHS = task_paths


def _as_list(include_path) -> list:
    if include_path is None:
        return []
    return list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]


def patch_task_manager(cls: type) -> None:
    if getattr(cls, "_finbench_patched", False):
        return
    original = cls.__init__
    signature = inspect.signature(original)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        user = _as_list(bound.arguments.get("include_path"))
        ours = task_paths()
        seen = {str(Path(p).resolve()) for p in user}
        bound.arguments["include_path"] = [p for p in ours if str(Path(p).resolve()) not in seen] + user
        original(*bound.args, **bound.kwargs)

    __init__.__doc__ = original.__doc__
    cls.__init__ = __init__
    cls._finbench_patched = True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of lm-eval's task manager module."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def patched_exec(module):
            exec_module(module)
            patch_task_manager(module.TaskManager)

        loader.exec_module = patched_exec
        return spec


def install() -> None:
    # Runs at every interpreter start (the .pth line), before any command-line boundary: it reads
    # only its own switch. Our loaders that lm-eval later calls resolve the settings at each call
    # (finbench.core.settings.current), so a FINBENCH_SETTINGS a parent forwarded holds there.
    if not settings.hook_enabled():
        return
    if _TARGET in sys.modules:
        patch_task_manager(sys.modules[_TARGET].TaskManager)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def write_pth(site_packages: str | None = None) -> Path:
    """Install the start-up line into this environment's site-packages (idempotent)."""
    target = Path(site_packages or sysconfig.get_paths()["purelib"]) / PTH_NAME
    if not target.exists() or target.read_text() != PTH_LINE:
        write_atomic(target, PTH_LINE)
    return target


if __name__ == "__main__":
    print(write_pth())

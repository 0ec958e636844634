"""The layout's limits (issue 18): modules and functions small enough to hold in one head, and no
environment read while `finbench` is imported (settings are resolved at the command-line boundary
and passed down, so importing a module never fixes a path or a data source)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = [p for d in ("finbench", "eval_plugins") for p in sorted((ROOT / d).rglob("*.py"))]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def test_no_module_over_500_lines() -> None:
    big = {str(p.relative_to(ROOT)): n for p in CODE if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_function_over_60_lines() -> None:
    long = [
        f"{p.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for p in CODE
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


# Runs in a fresh interpreter: os.environ is wrapped so that every read made from a finbench or
# eval_plugins file while the package is imported is recorded (reads libraries make are theirs).
PROBE = r"""
import os, sys, pkgutil, importlib
roots = (os.path.join(sys.argv[1], "finbench"), os.path.join(sys.argv[1], "eval_plugins"))
reads = set()
class Traced(type(os.environ)):
    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)
    def get(self, key, default=None):
        self._note(key)
        return super().get(key, default)
    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)
    def _note(self, key):
        f = sys._getframe(2)  # the caller; past os.getenv / Mapping.get when they stand between
        while f is not None and f.f_code.co_filename.endswith(("os.py", "<frozen os>", "_collections_abc.py", "<frozen _collections_abc>")):
            f = f.f_back
        if f is not None and f.f_code.co_filename.startswith(roots):
            reads.add(f"{key} from {f.f_code.co_filename}:{f.f_lineno}")
for name in [m for m in sys.modules if m.split(".")[0] in ("finbench", "eval_plugins")]:
    del sys.modules[name]  # the lm-eval .pth line imported some at start-up: import them afresh
env = os.environ
os.environ = Traced(env._data, env.encodekey, env.decodekey, env.encodevalue, env.decodevalue)
import finbench
for m in pkgutil.walk_packages(finbench.__path__, "finbench."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)
for name in ("metrics", "parsers", "ner", "numeric", "finqa_program", "finben_metrics"):
    importlib.import_module("eval_plugins." + name)
print("\n".join(sorted(reads)))
"""


def test_importing_finbench_reads_no_environment() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT)], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "", "environment read at import:\n" + out.stdout

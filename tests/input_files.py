"""Test helpers that edit copies of the shipped recipe and demo mixture, and read the one-line
error the command line prints for a bad input."""

from __future__ import annotations

from pathlib import Path

import yaml

from finbench import mixtures as M
from finbench.core import validate as V

ROOT = Path(__file__).resolve().parent.parent


def recipe_copy(tmp_path: Path, **over) -> Path:
    """recipes/tiny_cpu.yaml with `over` set (`block.leaf` for nested keys), written as tmp_path/r.yaml."""
    data = yaml.safe_load((ROOT / "recipes/tiny_cpu.yaml").read_text(encoding="utf-8"))
    for key, value in over.items():
        block, _, leaf = key.partition(".")
        if leaf:
            data[block][leaf] = value
        else:
            data[key] = value
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def demo_mixture() -> dict:
    return yaml.safe_load((ROOT / "mixtures/demo.yaml").read_text(encoding="utf-8"))


def parse_mixture(data: dict) -> M.Mixture:
    return M.parse_mixture(data, name="t", path=ROOT / "mixtures" / "t.yaml")


def one_line_error(capsys, tmp_path: Path) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    # about 300 characters besides the file's path (as long as the user made it)
    assert len(err.replace(str(tmp_path), "TMP")) <= V.MAX_MESSAGE + len("finbench: error: "), err
    return err

"""A mixture rebuild is byte-identical (timings sit beside the manifest) and outputs respect the umask."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from input_files import demo_mixture

from finbench import mixtures as M
from finbench.core.files import write_atomic

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.fixture
def small_mixture(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURE_DATA))
    spec = {"seed": 3, "contamination": {"tasks": ["fpb"], "mode": "drop"},
            "components": {"fpb": {"task": "fpb", "count": 12},
                           "openorca": {**demo_mixture()["components"]["openorca"], "relative_to": ["fpb"]}}}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_a_rebuild_is_byte_identical_and_timings_sit_beside_the_manifest(small_mixture, tmp_path) -> None:
    first = M.build(M.load_mixture(str(small_mixture)), tmp_path / "out", progress=False)
    from finbench.mixtures.build import timings_path

    manifest, jsonl = first.manifest.read_bytes(), first.jsonl.read_bytes()
    assert "build_seconds" not in json.loads(manifest) and "timings_s" not in json.loads(manifest)
    timings = json.loads(timings_path(first.manifest).read_text())
    assert set(timings) == {"build_seconds", "timings_s"} and "build_seconds" in first.summary
    again = M.build(M.load_mixture(str(small_mixture)), tmp_path / "out", progress=False, force=True)
    assert not again.cached
    assert again.manifest.read_bytes() == manifest and again.jsonl.read_bytes() == jsonl


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_respect_the_umask(small_mixture, tmp_path, umask, mode) -> None:
    old = os.umask(umask)
    try:
        res = M.build(M.load_mixture(str(small_mixture)), tmp_path / "out", progress=False)
        single = write_atomic(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    for path in (res.jsonl, res.manifest, single):
        assert path.stat().st_mode & 0o777 == mode, path

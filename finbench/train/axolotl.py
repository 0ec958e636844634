"""Compilation: a `Recipe` and a built mixture become one complete Axolotl config (absolute paths),
checked by Axolotl's own validator before anything runs."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finbench.train.deepspeed import distributed_block
from finbench.train.recipe import Recipe
from finbench.train.schema import (
    AUTO_EPOCHS_FEW,
    AUTO_EPOCHS_MANY,
    AUTO_EPOCHS_THRESHOLD,
    AUTO_WARMUP_FEW,
    AUTO_WARMUP_MANY,
    GPU_ONLY_AXOLOTL_KEYS,
    RecipeError,
)

# The seed plugin's dotted name (finbench/train/seed_plugin.py), spelled here so compiling a config
# does not import Axolotl.
SEED_PLUGIN = "finbench.train.seed_plugin.SeedPlugin"


@dataclass(frozen=True)
class MixtureInfo:
    """What the compiler needs to know about a built mixture."""

    jsonl: Path
    manifest: Path
    content_hash: str
    n_datasets: int




def num_epochs(recipe: Recipe, mixture: MixtureInfo) -> int | float:
    value = recipe.data["hyperparameters"].get("num_epochs", "auto")
    if value != "auto":
        return value
    return AUTO_EPOCHS_MANY if mixture.n_datasets > AUTO_EPOCHS_THRESHOLD else AUTO_EPOCHS_FEW


def warmup_steps(recipe: Recipe, mixture: MixtureInfo) -> int | None:
    """`warmup_steps` with `auto` resolved like `num_epochs` (None when the recipe sets none)."""
    value = recipe.data["hyperparameters"].get("warmup_steps")
    if value != "auto":
        return value
    return AUTO_WARMUP_MANY if mixture.n_datasets > AUTO_EPOCHS_THRESHOLD else AUTO_WARMUP_FEW


def _mixture_dataset(mixture: MixtureInfo) -> dict[str, Any]:
    """The one Axolotl dataset entry: the mixture's JSONL of chat messages, loss on assistant turns."""
    return {
        "path": str(Path(mixture.jsonl).resolve()),
        "ds_type": "json",
        "split": "train",
        "type": "chat_template",
        "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }


_EOS_SENTINEL = "\x00EOS\x00"


@functools.cache
def turn_terminator(chat_template: str) -> str | None:
    """The token that ends an assistant turn in Axolotl's `chat_template`, when it is not EOS.

    Axolotl trains the end of a turn only on `eot_tokens`, which default to the tokenizer's EOS.
    Templates that close turns with their own token (chatml `<|im_end|>`, phi_3 `<|end|>`, llama3
    `<|eot_id|>`) then leave the terminator untrained whenever the tokenizer's EOS differs (the
    SmolLM2 GGUF, base Qwen2.5, Phi-3's `<|endoftext|>`): the fine-tuned model forgets to stop and
    appends "The answer is no. The answer is..." to every answer. Read off the template itself
    by rendering one assistant turn; None when the turn ends in EOS or the template is the
    tokenizer's own (then Axolotl's default is right).
    """
    if chat_template == "tokenizer_default":
        return None
    import jinja2.sandbox
    from axolotl.utils.chat_templates import get_chat_template

    messages = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "\x01A\x01"}]
    # `{% generation %}` marks assistant spans for transformers' masks; rendering needs only text.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols"])
    try:
        source = re.sub(r"{%-?\s*(end)?generation\s*-?%}", "", get_chat_template(chat_template))
        text = env.from_string(source).render(
            messages=messages, bos_token="", eos_token=_EOS_SENTINEL, add_generation_prompt=False
        )
    except Exception:  # `jinja` (the recipe brings its own), or a template that needs more: Axolotl's default
        return None
    tail = text.split("\x01A\x01", 1)[-1].lstrip(" ")
    # The first special-looking token: <|im_end|>, <end_of_turn>, [|endofturn|], <｜end▁of▁sentence｜>.
    match = re.match(r"<[^<>\s]+>|\[\|[^\]\s]+\|\]", tail)
    if tail.startswith(_EOS_SENTINEL) or match is None:
        return None
    return match.group()


def _adapter_block(recipe: Recipe, lora_kernels: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"adapter": "qlora" if recipe.method == "qlora" else "lora", **recipe.data["lora"]}
    if recipe.method == "qlora":
        out["load_in_4bit"] = True
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
        out[key] = lora_kernels
    return out


def compile_config(
    recipe: Recipe,
    mixture: MixtureInfo,
    run_dir: Path,
    *,
    base_model: str,
    prepared_root: Path,
    gpu: bool,
) -> dict[str, Any]:
    """A complete Axolotl config for `recipe` trained on `mixture` in `run_dir` (absolute paths).

    `gpu` is whether this machine has a CUDA GPU: without one, attention is sdpa, precision fp32
    and Axolotl's LoRA kernels are off whatever the profile says, so the config stays loadable for
    validation (a GPU profile is refused at train time, not here).
    """
    data = recipe.data
    hp = dict(data["hyperparameters"])
    hw = recipe.hardware
    cfg = _core_config(recipe, mixture, hp, Path(run_dir).resolve(), base_model, prepared_root, gpu)
    hp.pop("num_epochs", None)
    if "warmup_steps" in hp:
        hp["warmup_steps"] = warmup_steps(recipe, mixture)
    cfg.update(hp)  # learning_rate, lr_scheduler, optimizer, micro_batch_size, ... (Axolotl names)

    if recipe.is_adapter:
        cfg.update(_adapter_block(recipe, bool(hw["lora_kernels"]) if gpu else False))
    if gpu or hw["profile"] != "cpu":
        cfg.update(distributed_block(recipe))

    eot = turn_terminator(data["chat_template"])
    if eot is not None:
        cfg["eot_tokens"] = [eot]
    for key, value in (data.get("axolotl") or {}).items():
        cfg[key] = value
    # ours first, then any the recipe's pass-through block names (Liger, Cut Cross Entropy, ...)
    cfg["plugins"] = [SEED_PLUGIN, *(p for p in cfg.get("plugins") or [] if p != SEED_PLUGIN)]
    if not gpu:
        # The pass-through block must not bring GPU-only settings back on a CPU machine.
        for key in GPU_ONLY_AXOLOTL_KEYS:
            if cfg.get(key):
                cfg.pop(key)
    return cfg


def _core_config(
    recipe: Recipe, mixture: MixtureInfo, hp: dict[str, Any], run_dir: Path, base_model: str,
    prepared_root: Path, gpu: bool,
) -> dict[str, Any]:
    """The keys every run sets: model, data, output, seed, length, epochs, precision, attention,
    checkpoints. Takes the hyperparameters it places out of `hp`; the rest go to Axolotl as named."""
    data = recipe.data
    hw = recipe.hardware
    precision = hw["precision"] if gpu else "fp32"
    attention = hw["attention"] if gpu else "sdpa"
    return {
        "base_model": base_model,
        "trust_remote_code": bool(data.get("trust_remote_code", False)),
        "chat_template": data["chat_template"],
        "datasets": [_mixture_dataset(mixture)],
        # Axolotl's own cache key ignores file contents: the mixture hash in the path makes an
        # edited mixture prepare afresh instead of silently reusing stale tokens.
        "dataset_prepared_path": str((Path(prepared_root) / mixture.content_hash).resolve()),
        "val_set_size": hp.pop("val_set_size", 0.0),
        "output_dir": str(run_dir / "output"),
        "seed": data["seed"],
        "sequence_len": hp.pop("sequence_len"),
        "sample_packing": hp.pop("sample_packing"),
        "eval_sample_packing": False,
        # Packed bins are padded to one length (steady memory); unpacked rows pad per batch.
        "pad_to_sequence_len": bool(data["hyperparameters"]["sample_packing"]),
        "num_epochs": num_epochs(recipe, mixture),
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        # Axolotl's default `auto` turns TF32 on for Ampere+; `false` leaves PyTorch's default (off)
        "tf32": bool(hw["tf32"]) and gpu,
        "attn_implementation": attention,
        "gradient_checkpointing": bool(hw["gradient_checkpointing"]),
        "logging_steps": hp.pop("logging_steps", 1),
        "save_strategy": "steps" if "save_steps" in hp else "epoch",
        "save_total_limit": 2,
        "save_safetensors": True,
        "auto_resume_from_checkpoints": True,
        "use_tensorboard": False,
    }


def validate_axolotl(cfg: Mapping[str, Any], where: str = "compiled config") -> Any:
    """Axolotl's own validator (pydantic schema + cross-field checks); returns its cfg."""
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    try:
        return validate_config(DictDefault(dict(cfg)))
    except Exception as err:  # pydantic ValidationError or ValueError from Axolotl's checks
        raise RecipeError(f"{where}: rejected by Axolotl's validator: {err}") from err


def has_gpu() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def dump_yaml(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False, default_flow_style=False, width=100)

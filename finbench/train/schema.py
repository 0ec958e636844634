"""The recipe schema: every key a recipe may set, its type, its bounds and what it means.

A recipe reads like an Axolotl config with a few project keys (see `recipes/phi3_cocktail.yaml`):

    base_model: microsoft/Phi-3-mini-4k-instruct   # hub id, local folder, or builtin:tiny-llama
    chat_template: phi_3                          # an Axolotl template name or tokenizer_default
    mixture: paper_cocktail                       # mixtures/NAME.yaml, or a built .jsonl file
    method: full                                  # full | lora | qlora (+ a `lora:` block)
    hyperparameters: {learning_rate: 3.0e-6, lr_scheduler: cosine, num_epochs: auto, ...}
    hardware: {profile: gpu, precision: bf16, attention: flash_attention_2}
    seed: 42
    axolotl: {eval_steps: 50}                     # passed through; checked against Axolotl's schema
    eval: {tasks: [finbench]}                     # how `finbench eval NAME` scores the run

The train stage, in the order a recipe goes through it: `schema` (this module: the keys),
`checks` (validation against the schema, the hardware rules and the real registries), `recipe`
(the typed `Recipe` value, read from YAML once), `axolotl` and `deepspeed` (compilation to a
complete Axolotl config), `launch` and `run` (the run itself).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finbench.core import validate as V

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-phi3", "smollm2")
METHODS = ("full", "lora", "qlora")
PROFILES = ("cpu", "gpu", "multi_gpu", "multi_node")
PRECISIONS = ("bf16", "fp16", "fp32")
ATTENTIONS = ("flash_attention_2", "sdpa", "eager")
STRATEGIES = ("none", "zero2", "zero3", "fsdp2")
LAUNCHERS = ("accelerate", "torchrun", "ray")
EVAL_BACKENDS = ("auto", "vllm", "hf")
# The study (Brief et al. 2024): 2 epochs for cocktails of more than three datasets, else 3.
AUTO_EPOCHS_MANY, AUTO_EPOCHS_FEW, AUTO_EPOCHS_THRESHOLD = 2, 3, 3
# ... and 10 warmup steps for more than three datasets, else none (cocktail.py, `warmup_steps: auto`).
AUTO_WARMUP_MANY, AUTO_WARMUP_FEW = 10, 0


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file, the key and what was expected."""



def did_you_mean(key: str, candidates: list[str] | tuple[str, ...] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


# --------------------------------------------------------------------------------------------
# Schema. Each entry: key -> (type check, description used in messages). `None` = any.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    types: tuple[type, ...]
    expected: str
    choices: tuple[Any, ...] | None = None
    required: bool = False
    check: Any = None  # optional callable(value) -> error message or None


def _fraction(value: Any) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def _epochs(value: Any) -> str | None:
    if value == "auto" or (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_EPOCHS
    ):
        return None
    return (
        "must be a positive number or 'auto' "
        f"(at most {MAX_EPOCHS}; auto: 2 for mixtures of more than 3 datasets, else 3)"
    )


def _warmup_steps(value: Any) -> str | None:
    if value == "auto" or (isinstance(value, int) and 0 <= value <= MAX_STEPS):
        return None
    return f"must be an integer in [0, {MAX_STEPS}] or 'auto' (auto: 10 for mixtures of more than 3 datasets, else 0)"


def _layer_indices(value: Any) -> str | None:
    ok = all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
    if not value or not ok or len(set(value)) != len(value):
        return "must be a non-empty list of distinct integers >= 0"
    return None


def _between(low: float, high: float, *, low_open: bool = False) -> Any:
    """A check: a finite number in [low, high] ((low, high] with `low_open`); states the bounds."""
    def fmt(x: float) -> str:
        return str(x) if isinstance(x, int) else f"{x:g}"

    shown = f"{'>' if low_open else '>='} {fmt(low)} and <= {fmt(high)}"

    def check(value: Any) -> str | None:
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            return f"must be {shown} (a finite number)"
        return None

    return check


def _registry_check(what: str, names: Any) -> Any:
    """A check against a registry of names (`names()` -> the names, or None where unavailable)."""

    def check(value: Any) -> str | None:
        known = names()
        if known is None or value in known:
            return None
        hint = did_you_mean(str(value), sorted(known))
        return f"not a known {what}.{hint or ' Known: ' + V.listing(sorted(known))}"

    return check


# Axolotl maps these two itself (axolotl/core/builders/base.py, `_configure_scheduler`); every
# other name goes to transformers as `lr_scheduler_type`.
AXOLOTL_SCHEDULERS = ("one_cycle", "rex")


@functools.lru_cache(maxsize=1)
def lr_scheduler_names() -> frozenset[str] | None:
    """transformers' SchedulerType values plus Axolotl's own schedulers; None without them."""
    try:
        from transformers.trainer_utils import SchedulerType
    except ImportError:  # pragma: no cover
        return None
    return frozenset(s.value for s in SchedulerType) | frozenset(AXOLOTL_SCHEDULERS)


@functools.lru_cache(maxsize=1)
def chat_template_names() -> frozenset[str] | None:
    """Axolotl's ChatTemplate names (its `chat_template:` choices, incl. tokenizer_default); None without it."""
    try:
        from axolotl.utils.schemas.enums import ChatTemplate
    except ImportError:  # pragma: no cover
        return None
    return frozenset(t.value for t in ChatTemplate)


@functools.lru_cache(maxsize=1)
def optimizer_names() -> frozenset[str] | None:
    """transformers' OptimizerNames plus Axolotl's CustomSupportedOptimizers; None without them."""
    try:
        from transformers.training_args import OptimizerNames
    except ImportError:  # pragma: no cover
        return None
    names = frozenset(o.value for o in OptimizerNames)
    try:
        from axolotl.utils.schemas.enums import CustomSupportedOptimizers
    except ImportError:
        return names
    return names | frozenset(o.value for o in CustomSupportedOptimizers)


def _eval_batch_size(value: Any) -> str | None:
    if isinstance(value, int) and 1 <= value <= MAX_BATCH:
        return None
    if isinstance(value, str) and (value == "auto" or re.fullmatch(r"auto:[1-9]\d{0,2}", value)):
        return None
    return f"must be an integer in [1, {MAX_BATCH}], 'auto' or 'auto:N'"


_NUM = (int, float)
_STR_LIST = (list,)
SEED_MAX = 2**32 - 1  # numpy's and torch's seeding accept [0, 2**32 - 1]
MAX_EPOCHS = 1000
MAX_BATCH = 4096
MAX_STEPS = 10**9

TOP_LEVEL: dict[str, Field] = {
    "description": Field((str,), "a string"),
    "base_model": Field(
        (str,), "a hub id (org/name), a local model folder or builtin:NAME", required=True
    ),
    "chat_template": Field(
        (str,),
        "an Axolotl chat template name (chatml, phi_3, llama3, ...) or tokenizer_default",
        required=True,
        check=_registry_check("Axolotl chat template", chat_template_names),
    ),
    "mixture": Field(
        (str,),
        "a mixture name (mixtures/NAME.yaml) or a path to a mixture .yaml/.jsonl",
        required=True,
    ),
    "method": Field((str,), "one of full, lora, qlora", choices=METHODS, required=True),
    "lora": Field((dict,), "a mapping (LoRA settings)"),
    "hyperparameters": Field((dict,), "a mapping (training hyperparameters)", required=True),
    "hardware": Field((dict,), "a mapping (hardware profile)", required=True),
    "seed": Field(
        (int,), f"an integer in [0, {SEED_MAX}]", required=True, check=_between(0, SEED_MAX)
    ),
    "mixture_seed": Field(  # set by a sweep with `data_seed: run`: the mixture's rows follow the run seed
        (int,), f"an integer in [0, {SEED_MAX}] (default: the mixture's own seed)", check=_between(0, SEED_MAX)
    ),
    "trust_remote_code": Field((bool,), "true or false"),
    "axolotl": Field((dict,), "a mapping of extra Axolotl config keys"),
    "eval": Field((dict,), "a mapping (evaluation settings)"),
}

HYPERPARAMETERS: dict[str, Field] = {
    "learning_rate": Field(_NUM, "a number", required=True, check=_between(0, 1, low_open=True)),
    "lr_scheduler": Field(
        (str,),
        "a scheduler name (cosine, linear, constant, ...)",
        required=True,
        check=_registry_check("learning-rate scheduler", lr_scheduler_names),
    ),
    "num_epochs": Field((int, float, str), "a positive number or 'auto'", check=_epochs),
    "max_steps": Field((int,), "an integer", check=_between(1, MAX_STEPS)),
    "sequence_len": Field((int,), "an integer", required=True, check=_between(1, 2**20)),
    "sample_packing": Field((bool,), "true or false", required=True),
    "micro_batch_size": Field(
        (int,), "an integer", required=True, check=_between(1, MAX_BATCH)
    ),
    "gradient_accumulation_steps": Field(
        (int,), "an integer", required=True, check=_between(1, 65536)
    ),
    "warmup_ratio": Field(_NUM, "a number in [0, 1)", check=_fraction),
    "warmup_steps": Field((int, str), "an integer or 'auto'", check=_warmup_steps),
    "optimizer": Field(
        (str,),
        "an optimizer name (adamw_torch_fused, adamw_torch, ...)",
        check=_registry_check("optimizer", optimizer_names),
    ),
    "weight_decay": Field(_NUM, "a number", check=_between(0, 10)),
    "max_grad_norm": Field(_NUM, "a number", check=_between(0, 1e6, low_open=True)),
    "val_set_size": Field(_NUM, "a number", check=_between(0, MAX_STEPS)),
    "save_steps": Field((int,), "an integer", check=_between(1, MAX_STEPS)),
    "logging_steps": Field((int,), "an integer", check=_between(1, MAX_STEPS)),
}

LORA: dict[str, Field] = {
    "lora_r": Field((int,), "an integer", required=True, check=_between(1, 4096)),
    "lora_alpha": Field((int,), "an integer", required=True, check=_between(1, 65536)),
    "lora_dropout": Field(_NUM, "a number in [0, 1)", check=_fraction),
    "lora_target_linear": Field((bool,), "true or false"),
    "lora_target_modules": Field(_STR_LIST, "a list of module names"),
    "lora_modules_to_save": Field(_STR_LIST, "a list of module names"),
    # PEFT's layers_to_transform: the adapter goes on these decoder layers only (checked against
    # the model's num_hidden_layers in checks.check_references)
    "peft_layers_to_transform": Field(
        (list,), "a list of distinct decoder layer indices (integers >= 0)", check=_layer_indices
    ),
}

DEEPSPEED_INITIAL_SCALE_POWER = 32  # Axolotl's deepspeed_configs/zero{2,3}*.json (fp16 loss scale 2**32)
HARDWARE: dict[str, Field] = {
    "profile": Field((str,), "one of " + ", ".join(PROFILES), choices=PROFILES, required=True),
    "precision": Field((str,), "one of " + ", ".join(PRECISIONS), choices=PRECISIONS),
    "attention": Field((str,), "one of " + ", ".join(ATTENTIONS), choices=ATTENTIONS),
    "strategy": Field((str,), "one of " + ", ".join(STRATEGIES), choices=STRATEGIES),
    "launcher": Field((str,), "one of " + ", ".join(LAUNCHERS), choices=LAUNCHERS),
    "gpus_per_node": Field((int,), "an integer", check=_between(1, 64)),
    "num_nodes": Field((int,), "an integer", check=_between(1, 4096)),
    "gradient_checkpointing": Field((bool,), "true or false"),
    "lora_kernels": Field((bool,), "true or false"),
    "offload_optimizer": Field((bool,), "true or false (DeepSpeed ZeRO: optimizer state in CPU memory)"),
    "initial_scale_power": Field(
        (int,), "an integer in [1, 64] (DeepSpeed fp16: the first loss scale is 2**N)", check=_between(1, 64)
    ),
    "tf32": Field((bool,), "true or false (true: TF32 matmuls forced on; false: PyTorch's default, off)"),
}

EVAL: dict[str, Field] = {
    "tasks": Field(_STR_LIST, "a list of lm-eval task or group names"),
    "backend": Field((str,), "one of " + ", ".join(EVAL_BACKENDS), choices=EVAL_BACKENDS),
    "batch_size": Field((int, str), "an integer or 'auto'", check=_eval_batch_size),
    "num_fewshot": Field((int,), "an integer", check=_between(0, 1000)),
    "limit": Field(_NUM, "a number", check=_between(0, MAX_STEPS, low_open=True)),
    "max_model_len": Field((int,), "an integer", check=_between(1, 2**22)),
}

BLOCKS = {"hyperparameters": HYPERPARAMETERS, "lora": LORA, "hardware": HARDWARE, "eval": EVAL}

# Axolotl keys the compiler sets from project keys: setting them in `axolotl:` would create two
# sources of truth, so the validator points to the project key instead.
MANAGED_AXOLOTL_KEYS: dict[str, str] = {
    "base_model": "base_model",
    "base_model_config": "base_model",
    "tokenizer_config": "base_model",
    "chat_template": "chat_template",
    "datasets": "mixture",
    "dataset_prepared_path": "mixture (keyed by its content hash)",
    "output_dir": "the run folder (finbench train)",
    "adapter": "method",
    "load_in_4bit": "method: qlora",
    "load_in_8bit": "method",
    "seed": "seed",
    "trust_remote_code": "trust_remote_code",
    "bf16": "hardware.precision",
    "fp16": "hardware.precision",
    "tf32": "hardware.precision",
    "flash_attention": "hardware.attention",
    "sdp_attention": "hardware.attention",
    "xformers_attention": "hardware.attention",
    "eager_attention": "hardware.attention",
    "attn_implementation": "hardware.attention",
    "deepspeed": "hardware.strategy",
    "fsdp": "hardware.strategy",
    "fsdp_config": "hardware.strategy (extra settings: hardware.fsdp_config is not supported; "
    "edit the compiled strategy in finbench/train/deepspeed.py)",
    "fsdp_version": "hardware.strategy",
    "use_ray": "hardware.launcher: ray",
    "ray_num_workers": "hardware.gpus_per_node x hardware.num_nodes",
    "gradient_checkpointing": "hardware.gradient_checkpointing",
    "lora_mlp_kernel": "hardware.lora_kernels",
    "lora_qkv_kernel": "hardware.lora_kernels",
    "lora_o_kernel": "hardware.lora_kernels",
    "lora_embedding_kernel": "hardware.lora_kernels",
    "auto_resume_from_checkpoints": "finbench train (always resumes)",
    "resume_from_checkpoint": "finbench train (always resumes)",
    **{k: f"hyperparameters.{k}" for k in HYPERPARAMETERS},
    **{k: f"lora.{k}" for k in LORA},
}
# Settings that need a CUDA GPU; refused in the cpu profile (Axolotl accepts them and then fails
# at load or training time, after minutes of preprocessing).
GPU_ONLY_AXOLOTL_KEYS = (
    "load_in_4bit",
    "load_in_8bit",
    "flash_attention",
    "flash_attn_cross_entropy",
    "flash_attn_rms_norm",
    "flash_attn_fuse_mlp",
    "xformers_attention",
    "deepspeed",
    "fsdp",
    "fsdp_config",
    "fsdp_version",
    "liger_rope",
    "liger_rms_norm",
    "liger_glu_activation",
    "liger_layer_norm",
    "liger_fused_linear_cross_entropy",
    "cut_cross_entropy",
    "unsloth_lora_mlp",
    "unsloth_lora_qkv",
    "unsloth_lora_o",
    "torch_compile",
)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hardware_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """The hardware block with defaults filled in for its profile."""
    hw = dict(data["hardware"])
    cpu = hw["profile"] == "cpu"
    hw.setdefault("precision", "fp32" if cpu else "bf16")
    hw.setdefault("attention", "sdpa" if cpu else "flash_attention_2")
    hw.setdefault("strategy", "none")
    hw.setdefault("launcher", "accelerate")
    hw.setdefault("num_nodes", 1)
    hw.setdefault("gradient_checkpointing", not cpu)
    hw.setdefault("lora_kernels", not cpu and data.get("method") in ("lora", "qlora"))
    hw.setdefault("tf32", not cpu)
    hw.setdefault("initial_scale_power", DEEPSPEED_INITIAL_SCALE_POWER)
    return hw



"""Recipes: one YAML file per model and training method, compiled into a complete Axolotl config.

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

Validation is strict because Axolotl's own validator silently drops unknown keys: every key is
checked against this schema (or, in the `axolotl:` block, against Axolotl's pydantic schema) with
a did-you-mean, types are checked and named, and GPU-only settings are refused for the cpu profile.
Then the compiled config goes through `axolotl.utils.config.validate_config` as well.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finbench.core import settings
from finbench.core import validate as V
from finbench.core.files import is_file
from finbench.data import raw as D

ROOT = settings.ROOT
RECIPES_DIR = Path(os.environ.get("FINBENCH_RECIPES_DIR", ROOT / "recipes"))
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
        hint = _did_you_mean(str(value), sorted(known))
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
    "edit the compiled strategy in finbench/train/recipes.py)",
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


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    data: dict[str, Any] = field(repr=False)

    @property
    def method(self) -> str:
        return self.data["method"]

    @property
    def base_model(self) -> str:
        """The `base_model` as written: a hub id, a local folder or builtin:NAME (resolve_base_model)."""
        return str(self.data["base_model"])

    @property
    def hardware(self) -> dict[str, Any]:
        return hardware_settings(self.data)

    @property
    def eval(self) -> dict[str, Any]:
        return dict(self.data.get("eval") or {})

    @property
    def is_adapter(self) -> bool:
        return self.method in ("lora", "qlora")


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """recipes/NAME.yaml for a bare name, else the given file."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in text:
        if not is_file(path):
            raise RecipeError(f"{path}: recipe file not found")
        return path.resolve()
    known = available()
    if text not in known:
        close = difflib.get_close_matches(text, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RecipeError(
            f"unknown recipe {V.short(text)} (looked in {RECIPES_DIR}).{hint} "
            f"Known: {V.listing(list(known), 12) or 'none'}"
        )
    return known[text]


def load(name_or_path: str | os.PathLike[str]) -> Recipe:
    """Read and strictly validate a recipe (cheap: no model, no mixture, no Axolotl import)."""
    path = resolve(name_or_path)
    data = D.read_yaml(path, RecipeError)
    validate(data, path)
    return Recipe(name=path.stem, path=path, data=data)


def _did_you_mean(key: str, candidates: list[str] | tuple[str, ...] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_block(
    block: Mapping[str, Any], schema: Mapping[str, Field], where: str, path: Path
) -> None:
    for key, value in block.items():
        if key not in schema:
            hint = _did_you_mean(str(key), schema)
            if not hint and where == "top level":
                target = MANAGED_AXOLOTL_KEYS.get(str(key))
                if target:
                    hint = f" It is set through `{target}`."
                elif str(key) in axolotl_schema_keys():
                    hint = " It is an Axolotl key: put it under `axolotl:`."
            raise RecipeError(
                f"{path}: unknown key {V.short(key)} at {where}.{hint}"
                + ("" if hint else f" Allowed: {', '.join(schema)}")  # a did-you-mean is enough
            )
        spec = schema[key]
        # bool is an int in Python: an int field must not take true/false, and vice versa.
        ok = isinstance(value, spec.types) and not (
            isinstance(value, bool) and bool not in spec.types
        )
        if not ok:
            raise RecipeError(
                f"{path}: key {_qual(where, key)} is {_type_name(value)} {V.short(value)}; "
                f"expected {spec.expected}"
            )
        if spec.choices is not None and value not in spec.choices:
            raise RecipeError(
                f"{path}: key {_qual(where, key)} is {V.short(value)}; expected {spec.expected}"
                f"{_did_you_mean(str(value), spec.choices)}"
            )
        if spec.check is not None:
            problem = spec.check(value)
            if problem:
                raise RecipeError(f"{path}: key {_qual(where, key)} is {V.short(value)}: {problem}")
    missing = [k for k, spec in schema.items() if spec.required and k not in block]
    if missing:
        raise RecipeError(f"{path}: missing required key(s) {', '.join(missing)} at {where}")


def _qual(where: str, key: str) -> str:
    return key if where == "top level" else f"{where}.{key}"


def validate(data: dict[str, Any], path: Path) -> None:
    _check_block(data, TOP_LEVEL, "top level", path)
    for block_name, schema in BLOCKS.items():
        if block_name in data:
            _check_block(data[block_name], schema, block_name, path)
    for key in ("tasks",):
        values = (data.get("eval") or {}).get(key)
        if values is not None and not all(isinstance(v, str) for v in values):
            raise RecipeError(f"{path}: eval.{key} must be a list of strings, got {V.short(values)}")
        if values is not None and V.duplicates(values):
            raise RecipeError(f"{path}: key eval.{key}: {V.duplicates(values)}")
    method = data["method"]
    if method == "full" and "lora" in data:
        raise RecipeError(
            f"{path}: key lora is set but method is 'full'; remove it or use method: lora"
        )
    if method != "full" and "lora" not in data:
        raise RecipeError(
            f"{path}: method {method!r} needs a `lora:` block (lora_r, lora_alpha, ...)"
        )
    if method != "full":
        lora = data["lora"]
        if not lora.get("lora_target_linear") and not lora.get("lora_target_modules"):
            raise RecipeError(
                f"{path}: lora needs lora_target_linear: true or a lora_target_modules list"
            )
    _validate_base_model(data["base_model"], path)
    _validate_hardware(data, path)
    _validate_axolotl_block(data.get("axolotl") or {}, path)


def _validate_base_model(value: str, path: Path) -> None:
    problem = V.path_name(value)  # a name the OS refuses would be an OSError at the first lookup
    if problem:
        expected = TOP_LEVEL["base_model"].expected
        raise RecipeError(f"{path}: key base_model {V.short(value)} {problem}; expected {expected}")
    if value.startswith(BUILTIN_PREFIX):
        name = value[len(BUILTIN_PREFIX) :]
        if name not in BUILTIN_MODELS:
            raise RecipeError(
                f"{path}: base_model {value!r}: unknown builtin model."
                f"{_did_you_mean(name, BUILTIN_MODELS)}"
                f" Known: {', '.join(BUILTIN_PREFIX + m for m in BUILTIN_MODELS)}"
            )


# The architecture each builtin model is built with (finbench.train.models): enough to know its modules.
BUILTIN_ARCHS = {
    "tiny-llama": "llama",
    "tiny-mistral": "mistral",
    "tiny-qwen2": "qwen2",
    "tiny-phi3": "phi3",
    "smollm2": "llama",
}


def check_references(recipe: Recipe) -> list[str]:
    """Names that lm-eval and PEFT look up later, checked now against their real registries.

    `eval.tasks` against lm-eval's task registry (ours, then the built-ins); `lora_target_modules`
    against the base model's module names when its config is readable without the network (a
    builtin model, a local folder, a hub id already in the local cache). Raises RecipeError naming
    the file and key; returns warnings for what can only be checked when the model loads.
    """
    from finbench.data import tasks as T
    path, data, warnings = recipe.path, recipe.data, []
    tasks = list((data.get("eval") or {}).get("tasks") or [])
    if tasks:
        unknown = T.unknown_task_names(tasks)
        if unknown:
            name, hint = next(iter(unknown.items()))
            raise RecipeError(
                f"{path}: key eval.tasks: {V.short(name)} is not an lm-eval task, group or tag (neither "
                f"one of ours in {T.TASKS_DIR} nor an lm-eval built-in).{hint}"
            )
    targets = list((data.get("lora") or {}).get("lora_target_modules") or [])
    if targets and recipe.is_adapter:
        modules = model_module_names(data["base_model"])
        if modules is None:
            warnings.append(
                f"{path}: lora.lora_target_modules {targets} not checked: the config of "
                f"{data['base_model']!r} is not available locally; PEFT checks them when it loads"
            )
        else:
            leaves = sorted({m.rsplit(".", 1)[-1] for m in modules})
            for target in targets:
                if not any(m == target or m.endswith("." + target) for m in modules):
                    hint = _did_you_mean(str(target), leaves)
                    raise RecipeError(
                        f"{path}: key lora.lora_target_modules: {V.short(target)} names no module of "
                        f"{V.short(data['base_model'])}.{hint or ' Module names: ' + V.listing(leaves, 20)}"
                    )
    return warnings


@functools.lru_cache(maxsize=16)
def model_module_names(base_model: str) -> frozenset[str] | None:
    """Every module name of `base_model`, from its config alone (built on the meta device: no
    weights, no memory); None when the config cannot be read without the network."""
    config = _model_config(base_model)
    if config is None:
        return None
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except Exception:  # an architecture transformers cannot build without remote code
        return None
    return frozenset(name for name, _ in model.named_modules() if name)


def _model_config(base_model: str) -> Any:
    from transformers import AutoConfig

    if base_model.startswith(BUILTIN_PREFIX):
        arch = BUILTIN_ARCHS.get(base_model[len(BUILTIN_PREFIX) :])
        return AutoConfig.for_model(arch) if arch else None
    folder = Path(base_model).expanduser()
    if not (folder / "config.json").is_file():
        if not _HUB_ID.match(base_model):
            return None
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(base_model, "config.json")
        if not isinstance(cached, str):
            return None
        folder = Path(cached).parent
    try:
        return AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    except Exception:  # unreadable or remote-code config: PEFT checks at load time instead
        return None


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


def _validate_hardware(data: Mapping[str, Any], path: Path) -> None:
    hw = hardware_settings(data)
    profile = hw["profile"]
    if profile == "cpu":
        gpu_only = {
            "precision": hw["precision"] != "fp32",
            "attention": hw["attention"] == "flash_attention_2",
            "strategy": hw["strategy"] != "none",
            "lora_kernels": bool(hw["lora_kernels"]),
            "launcher": hw["launcher"] == "ray",
        }
        bad = [k for k, is_bad in gpu_only.items() if is_bad]
        if data["method"] == "qlora":
            raise RecipeError(
                f"{path}: method qlora (4-bit bitsandbytes) needs a GPU; hardware.profile is cpu"
            )
        if bad:
            key = bad[0]
            raise RecipeError(
                f"{path}: hardware.{key}: {hw[key]!r} needs a GPU but hardware.profile is cpu "
                "(cpu runs use fp32, sdpa attention, no distributed strategy and no LoRA kernels)"
            )
        for key in data.get("axolotl") or {}:
            if key in GPU_ONLY_AXOLOTL_KEYS and (data["axolotl"][key] not in (False, None)):
                raise RecipeError(f"{path}: axolotl.{key} needs a GPU but hardware.profile is cpu")
    if profile in ("cpu", "gpu"):
        if hw["strategy"] != "none":
            raise RecipeError(
                f"{path}: hardware.strategy {hw['strategy']!r} needs profile multi_gpu or "
                "multi_node "
                f"(profile is {profile})"
            )
        if hw["num_nodes"] != 1 or hw.get("gpus_per_node", 1) != 1:
            raise RecipeError(f"{path}: hardware profile {profile} runs one process on one node")
    if profile == "multi_gpu" and hw["num_nodes"] != 1:
        raise RecipeError(f"{path}: hardware.num_nodes > 1 needs profile multi_node")
    if (profile == "multi_node" or hw["launcher"] == "ray") and not hw.get("gpus_per_node"):
        raise RecipeError(
            f"{path}: profile {profile} with launcher {hw['launcher']} needs hardware.gpus_per_node"
        )
    if profile == "multi_node" and hw["num_nodes"] < 2:
        raise RecipeError(f"{path}: profile multi_node needs hardware.num_nodes >= 2")
    if (
        profile in ("multi_gpu", "multi_node")
        and hw["strategy"] == "none"
        and data["method"] == "full"
    ):
        # Plain DDP keeps full weights + optimizer state on every GPU: 3.8B+ models need ZeRO/FSDP.
        raise RecipeError(
            f"{path}: profile {profile} with method full needs hardware.strategy zero2, zero3 "
            "or fsdp2"
        )
    if "initial_scale_power" in data["hardware"] and hw["strategy"] not in ("zero2", "zero3"):
        raise RecipeError(
            f"{path}: hardware.initial_scale_power is a DeepSpeed setting: it needs strategy zero2 or "
            f"zero3 (strategy is {hw['strategy']})"
        )
    if hw.get("offload_optimizer") and hw["strategy"] not in ("zero2", "zero3"):
        raise RecipeError(
            f"{path}: hardware.offload_optimizer needs strategy zero2 or zero3 (strategy is {hw['strategy']})"
        )
    hp = data["hyperparameters"]
    if "warmup_steps" in hp and "warmup_ratio" in hp:
        raise RecipeError(f"{path}: hyperparameters: set warmup_steps or warmup_ratio, not both")
    if data["method"] == "qlora" and hw["strategy"] == "zero3":
        raise RecipeError(
            f"{path}: qlora with DeepSpeed ZeRO-3 is not supported by Axolotl; use zero2 or fsdp2"
        )


@functools.lru_cache(maxsize=1)
def _axolotl_fields() -> dict[str, str | None]:
    """Axolotl's config keys (fields and aliases) -> deprecation message or None; {} without it."""
    try:
        from axolotl.utils.schemas.config import AxolotlInputConfig
    except ImportError:
        return {}
    keys: dict[str, str | None] = {}
    for name, info in AxolotlInputConfig.model_fields.items():
        deprecated = str(info.deprecated) if info.deprecated else None
        keys[name] = deprecated
        if info.alias:
            keys[info.alias] = deprecated
    return keys


def axolotl_schema_keys() -> frozenset[str]:
    """Every key Axolotl's config schema knows; empty where Axolotl is not installed."""
    return frozenset(_axolotl_fields())


def _validate_axolotl_block(block: Mapping[str, Any], path: Path) -> None:
    known = axolotl_schema_keys()
    for key in block:
        if key in MANAGED_AXOLOTL_KEYS:
            raise RecipeError(
                f"{path}: axolotl.{key} is set by the recipe itself, through "
                f"`{MANAGED_AXOLOTL_KEYS[key]}`"
            )
        if _axolotl_fields().get(key):
            raise RecipeError(
                f"{path}: axolotl.{key} is deprecated by Axolotl: {_axolotl_fields()[key]}"
            )
        if known and key not in known:
            raise RecipeError(
                f"{path}: axolotl.{key} is not an Axolotl config key (Axolotl would silently "
                "ignore it)."
                f"{_did_you_mean(key, sorted(known))}"
            )


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixtureInfo:
    """What the compiler needs to know about a built mixture."""

    jsonl: Path
    manifest: Path
    content_hash: str
    n_datasets: int


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_base_model(value: str, *, materialize: bool = True) -> str:
    """A local folder (absolute) or a hub id.

    With `materialize`, builtin models are built (cached) and, offline, a hub id must be in the
    local Hugging Face cache; without it only the spelling and local folders are checked.
    """
    if value.startswith(BUILTIN_PREFIX):
        name = value[len(BUILTIN_PREFIX) :]
        if not materialize:
            return value
        from finbench.train import models
        if name == "smollm2":
            return str(models.smollm2())
        return str(models.tiny_model(arch=name.removeprefix("tiny-")))
    path = Path(value).expanduser()
    looks_local = value.startswith(("/", ".", "~")) or path.exists() or not _HUB_ID.match(value)
    if looks_local:
        if not path.is_dir():
            raise RecipeError(f"base_model {value!r}: no such model folder ({path.resolve()})")
        if not (path / "config.json").is_file():
            raise RecipeError(
                f"base_model {value!r}: {path.resolve()} has no config.json (not a model folder)"
            )
        return str(path.resolve())
    if materialize and os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True", "YES", "yes"):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(value, "config.json")
        if not isinstance(cached, str):
            raise RecipeError(
                f"base_model {value!r}: HF_HUB_OFFLINE is set and the model is not in the local "
                "Hugging Face cache; download it first or point base_model at a local folder"
            )
    return value


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


def _deepspeed(stage: int, offload: bool = False, initial_scale_power: int = DEEPSPEED_INITIAL_SCALE_POWER) -> dict[str, Any]:
    # Axolotl's deepspeed_configs/zero{2,3}_bf16.json, inline so the run folder is self-contained.
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if stage == 3:
        zero.update(
            sub_group_size=0,
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
            stage3_max_live_parameters=0,
            stage3_max_reuse_distance=0,
            stage3_gather_16bit_weights_on_model_save=True,
        )
    else:
        zero.update(allgather_partitions=True, allgather_bucket_size=5e8, reduce_scatter=True)
    if offload:  # the study's cache/ds_z2_offload_config.json
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "fp16": {
            "enabled": "auto",
            "auto_cast": False,
            "loss_scale": 0,
            "initial_scale_power": initial_scale_power,  # the study's ds_z2_offload_config.json: 16
            "loss_scale_window": 1000,
            "hysteresis": 2,
            "min_loss_scale": 1,
        },
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "wall_clock_breakdown": False,
    }


def _fsdp2(method: str) -> dict[str, Any]:
    # Without transformer_layer_cls_to_wrap, accelerate wraps the model's own `_no_split_modules`
    # (the decoder layer class), so one config serves every architecture.
    return {
        "offload_params": False,
        "cpu_ram_efficient_loading": method == "full",
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "state_dict_type": "FULL_STATE_DICT",
        "reshard_after_forward": True,
    }


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


def _distributed_block(recipe: Recipe) -> dict[str, Any]:
    """DeepSpeed ZeRO / FSDP2 and the Ray launcher, from the recipe's hardware block."""
    hw = recipe.hardware
    out: dict[str, Any] = {}
    strategy = hw["strategy"]
    if strategy in ("zero2", "zero3"):
        out["deepspeed"] = _deepspeed(
            int(strategy[-1]), bool(hw.get("offload_optimizer")), int(hw["initial_scale_power"])
        )
    elif strategy == "fsdp2":
        out["fsdp_version"] = 2
        out["fsdp_config"] = _fsdp2(recipe.method)
    if hw["launcher"] == "ray":
        out["use_ray"] = True
        out["ray_num_workers"] = hw.get("gpus_per_node", 1) * hw["num_nodes"]
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
    run_dir = Path(run_dir).resolve()
    precision = hw["precision"] if gpu else "fp32"
    attention = hw["attention"] if gpu else "sdpa"
    lora_kernels = bool(hw["lora_kernels"]) if gpu else False

    cfg: dict[str, Any] = {
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
    hp.pop("num_epochs", None)
    if "warmup_steps" in hp:
        hp["warmup_steps"] = warmup_steps(recipe, mixture)
    cfg.update(hp)  # learning_rate, lr_scheduler, optimizer, micro_batch_size, ... (Axolotl names)

    if recipe.is_adapter:
        cfg.update(_adapter_block(recipe, lora_kernels))
    if gpu or hw["profile"] != "cpu":
        cfg.update(_distributed_block(recipe))

    eot = turn_terminator(data["chat_template"])
    if eot is not None:
        cfg["eot_tokens"] = [eot]
    for key, value in (data.get("axolotl") or {}).items():
        cfg[key] = value
    if not gpu:
        # The pass-through block must not bring GPU-only settings back on a CPU machine.
        for key in GPU_ONLY_AXOLOTL_KEYS:
            if cfg.get(key):
                cfg.pop(key)
    return cfg


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

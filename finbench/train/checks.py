"""Recipe validation: every key against the schema, the hardware rules, and the names other tools
look up later (lm-eval tasks, a base model's modules) against their real registries.

Validation is strict because Axolotl's own validator silently drops unknown keys: every key is
checked against `finbench.train.schema` (or, in the `axolotl:` block, against Axolotl's pydantic
schema) with a did-you-mean, types are checked and named, and GPU-only settings are refused for
the cpu profile. The compiled config then goes through Axolotl's `validate_config` as well
(`finbench.train.axolotl.validate_axolotl`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finbench.core import validate as V
from finbench.train import models as M
from finbench.train.schema import (
    BLOCKS,
    BUILTIN_MODELS,
    BUILTIN_PREFIX,
    GPU_ONLY_AXOLOTL_KEYS,
    HUB_ID,
    MANAGED_AXOLOTL_KEYS,
    TOP_LEVEL,
    Field,
    RecipeError,
    did_you_mean,
    hardware_settings,
)

if TYPE_CHECKING:
    from finbench.train.recipe import Recipe


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_block(
    block: Mapping[str, Any], schema: Mapping[str, Field], where: str, path: Path
) -> None:
    for key, value in block.items():
        if key not in schema:
            hint = did_you_mean(str(key), schema)
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
                f"{did_you_mean(str(value), spec.choices)}"
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
                f"{did_you_mean(name, BUILTIN_MODELS)}"
                f" Known: {', '.join(BUILTIN_PREFIX + m for m in BUILTIN_MODELS)}"
            )


# The architecture and decoder layer count each builtin model is built with (finbench.train.models):
# enough to know its modules and layer indices without building it.
BUILTIN_ARCHS = {
    "tiny-llama": ("llama", M.TINY_LAYERS),
    "tiny-mistral": ("mistral", M.TINY_LAYERS),
    "tiny-qwen2": ("qwen2", M.TINY_LAYERS),
    "tiny-phi3": ("phi3", M.TINY_LAYERS),
    "smollm2": ("llama", M.SMOLLM2_LAYERS),
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
    if recipe.is_adapter:
        warnings += _check_adapter_layers(recipe)
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
                    hint = did_you_mean(str(target), leaves)
                    raise RecipeError(
                        f"{path}: key lora.lora_target_modules: {V.short(target)} names no module of "
                        f"{V.short(data['base_model'])}.{hint or ' Module names: ' + V.listing(leaves, 20)}"
                    )
    return warnings


def _check_adapter_layers(recipe: Recipe) -> list[str]:
    """`lora.peft_layers_to_transform` against the model's layer count (PEFT would otherwise fail
    only once the model has loaded, after preprocessing)."""
    layers = (recipe.data.get("lora") or {}).get("peft_layers_to_transform")
    if not layers:
        return []
    base = recipe.data["base_model"]
    n = getattr(_model_config(base), "num_hidden_layers", None)
    if not isinstance(n, int):
        return [f"{recipe.path}: lora.peft_layers_to_transform not checked: the layer count of "
                f"{base!r} is not available locally; PEFT checks it when it loads"]
    if max(layers) >= n:
        raise RecipeError(
            f"{recipe.path}: key lora.peft_layers_to_transform: layer {max(layers)} does not exist; "
            f"{V.short(base)} has {n} decoder layers (indices 0 to {n - 1})"
        )
    return []


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
        built = BUILTIN_ARCHS.get(base_model[len(BUILTIN_PREFIX) :])
        return AutoConfig.for_model(built[0], num_hidden_layers=built[1]) if built else None
    folder = Path(base_model).expanduser()
    if not (folder / "config.json").is_file():
        if not HUB_ID.match(base_model):
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


def _validate_hardware(data: Mapping[str, Any], path: Path) -> None:
    hw = hardware_settings(data)
    if hw["profile"] == "cpu":
        _validate_cpu_profile(data, hw, path)
    _validate_distribution(data, hw, path)
    hp = data["hyperparameters"]
    if "warmup_steps" in hp and "warmup_ratio" in hp:
        raise RecipeError(f"{path}: hyperparameters: set warmup_steps or warmup_ratio, not both")
    if data["method"] == "qlora" and hw["strategy"] == "zero3":
        raise RecipeError(
            f"{path}: qlora with DeepSpeed ZeRO-3 is not supported by Axolotl; use zero2 or fsdp2"
        )


def _validate_cpu_profile(data: Mapping[str, Any], hw: Mapping[str, Any], path: Path) -> None:
    """Nothing that needs a GPU in the cpu profile (Axolotl would accept it and fail at load time)."""
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


def _validate_distribution(data: Mapping[str, Any], hw: Mapping[str, Any], path: Path) -> None:
    """Processes, nodes and the distributed strategy fit the profile, the method and each other."""
    profile = hw["profile"]
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
                f"{did_you_mean(key, sorted(known))}"
            )



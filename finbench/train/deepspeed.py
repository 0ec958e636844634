"""Distributed training settings compiled from a recipe's hardware block: DeepSpeed ZeRO-2/3
(inline, so the run folder is self-contained), FSDP2, and Axolotl's Ray launcher."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finbench.train.schema import DEEPSPEED_INITIAL_SCALE_POWER

if TYPE_CHECKING:
    from finbench.train.recipe import Recipe


def zero_config(stage: int, offload: bool = False, initial_scale_power: int = DEEPSPEED_INITIAL_SCALE_POWER) -> dict[str, Any]:
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


def fsdp2_config(method: str) -> dict[str, Any]:
    # Without transformer_layer_cls_to_wrap, accelerate wraps the model's own `_no_split_modules`
    # (the decoder layer class), so one config serves every architecture.
    return {
        "offload_params": False,
        "cpu_ram_efficient_loading": method == "full",
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "state_dict_type": "FULL_STATE_DICT",
        "reshard_after_forward": True,
    }


def distributed_block(recipe: Recipe) -> dict[str, Any]:
    """DeepSpeed ZeRO / FSDP2 and the Ray launcher, from the recipe's hardware block."""
    hw = recipe.hardware
    out: dict[str, Any] = {}
    strategy = hw["strategy"]
    if strategy in ("zero2", "zero3"):
        out["deepspeed"] = zero_config(
            int(strategy[-1]), bool(hw.get("offload_optimizer")), int(hw["initial_scale_power"])
        )
    elif strategy == "fsdp2":
        out["fsdp_version"] = 2
        out["fsdp_config"] = fsdp2_config(recipe.method)
    if hw["launcher"] == "ray":
        out["use_ray"] = True
        out["ray_num_workers"] = hw.get("gpus_per_node", 1) * hw["num_nodes"]
    return out



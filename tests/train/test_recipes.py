"""Recipes: strict validation, compilation to Axolotl configs, Axolotl's own validator, launchers.

No training here (see test_train.py). Axolotl is imported for its schema and validator; the whole
module is skipped where Axolotl is not installed (`make install` installs it).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from finbench.train import axolotl as AX
from finbench.train import recipe as R
from finbench.train import run as TR
from finbench.train import schema as S

pytest.importorskip("axolotl", reason="Axolotl is not installed (make install)")

SHIPPED = sorted(R.available())
GPU_RECIPES = [n for n in SHIPPED if R.load(n).hardware["profile"] != "cpu"]


def stub_mixture(tmp_path: Path, n_datasets: int = 9, content_hash: str = "0123456789abcdef"):
    jsonl = tmp_path / "mix.jsonl"
    jsonl.write_text('{"messages": [{"role": "user", "content": "hi"}], "task": "t"}\n')
    manifest = tmp_path / "mix.manifest.json"
    manifest.write_text("{}")
    return AX.MixtureInfo(jsonl, manifest, content_hash, n_datasets)


def compile_recipe(recipe: R.Recipe, tmp_path: Path, *, gpu: bool, n_datasets: int = 9) -> dict:
    base = R.resolve_base_model(recipe.data["base_model"], materialize=False)
    return AX.compile_config(
        recipe,
        stub_mixture(tmp_path, n_datasets),
        tmp_path / "runs" / recipe.name,
        base_model=base,
        prepared_root=tmp_path / "prepared",
        gpu=gpu,
    )


def write_recipe(tmp_path: Path, data: dict, name: str = "r") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture()
def tiny() -> dict:
    return copy.deepcopy(R.load("tiny_cpu").data)


def test_expected_recipes_are_shipped():
    assert {
        "phi3_cocktail",
        "phi3_cocktail_lora",
        "llama31_8b_cocktail",
        "mistral_7b_cocktail",
        "qwen25_7b_cocktail",
        "tiny_cpu",
        "smol_cpu",
    } <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_compiles_and_passes_axolotl_validator(name, tmp_path):
    recipe = R.load(name)
    # A GPU recipe is validated as it would run on its GPUs, and as compiled on this CPU machine.
    for gpu in {True, False} if recipe.hardware["profile"] != "cpu" else {False}:
        cfg = compile_recipe(recipe, tmp_path, gpu=gpu)
        normalised = AX.validate_axolotl(cfg, where=name)
        assert normalised["base_model"] == cfg["base_model"]
        for key in ("output_dir", "dataset_prepared_path"):
            assert Path(cfg[key]).is_absolute()
        assert Path(cfg["datasets"][0]["path"]).is_absolute()
        assert cfg["dataset_prepared_path"].endswith("0123456789abcdef")
        assert cfg["trust_remote_code"] is False
        if not gpu:
            assert cfg["attn_implementation"] == "sdpa" and cfg["bf16"] is False
            assert not any(cfg.get(k) for k in S.GPU_ONLY_AXOLOTL_KEYS)
            if recipe.is_adapter:
                assert cfg["lora_mlp_kernel"] is False and cfg["lora_qkv_kernel"] is False


def test_every_config_names_the_seed_plugin_first(tmp_path, tiny):
    # Axolotl seeds only the Trainer, after the LoRA weights exist; the plugin seeds before them.
    import importlib

    from axolotl.integrations.base import BasePlugin

    module, _, cls = AX.SEED_PLUGIN.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), cls), BasePlugin)
    assert compile_recipe(R.load(write_recipe(tmp_path, tiny)), tmp_path, gpu=False)["plugins"] == [AX.SEED_PLUGIN]
    # A recipe's own plugins (pass-through block) come after it, once each, and Axolotl accepts them.
    lm_eval_plugin = "axolotl.integrations.lm_eval.LMEvalPlugin"
    tiny["axolotl"] = {"plugins": [lm_eval_plugin, AX.SEED_PLUGIN]}
    cfg = compile_recipe(R.load(write_recipe(tmp_path, tiny, "r2")), tmp_path, gpu=False)
    assert cfg["plugins"] == [AX.SEED_PLUGIN, lm_eval_plugin]
    assert AX.validate_axolotl(cfg, where="r2")["plugins"] == cfg["plugins"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_mixture_resolves(name):
    TR.check_mixture(R.load(name))  # raises RecipeError for a missing / malformed mixture


def test_phi3_cocktail_has_the_study_settings(tmp_path):
    recipe = R.load("phi3_cocktail")
    cfg = compile_recipe(recipe, tmp_path, gpu=True, n_datasets=9)
    assert recipe.method == "full" and "adapter" not in cfg
    assert cfg["learning_rate"] == 3e-6 and cfg["lr_scheduler"] == "cosine"
    assert cfg["sequence_len"] == 4096 and cfg["sample_packing"] is True
    assert cfg["attn_implementation"] == "flash_attention_2" and cfg["bf16"] is True
    assert cfg["chat_template"] == "phi_3" and cfg["eot_tokens"] == ["<|end|>"]
    assert cfg["num_epochs"] == 2  # more than three datasets
    assert compile_recipe(recipe, tmp_path, gpu=True, n_datasets=3)["num_epochs"] == 3
    lora = compile_recipe(R.load("phi3_cocktail_lora"), tmp_path, gpu=True)
    assert lora["adapter"] == "lora" and lora["lora_target_linear"] is True
    assert lora["lora_mlp_kernel"] is True  # GPU: Axolotl's LoRA kernels on


def test_launchers_and_distributed_strategies(tmp_path):
    cfg_path = tmp_path / "axolotl.yaml"
    phi3 = R.load("phi3_cocktail")
    cmd = TR.launcher_command(phi3, cfg_path)
    assert cmd[3:] == [
        "train",
        str(cfg_path),
        "--launcher",
        "accelerate",
        "--",
        "--num_processes",
        "1",
    ]

    llama = R.load("llama31_8b_cocktail")
    cfg = compile_recipe(llama, tmp_path, gpu=True)
    assert cfg["deepspeed"]["zero_optimization"]["stage"] == 3 and "fsdp_version" not in cfg
    cmd = TR.launcher_command(llama, cfg_path)
    assert cmd[cmd.index("--") :] == [
        "--",
        "--num_machines",
        "1",
        "--num_processes",
        "8",
        "--multi_gpu",
    ]

    mistral = compile_recipe(R.load("mistral_7b_cocktail"), tmp_path, gpu=True)
    assert mistral["fsdp_version"] == 2 and "deepspeed" not in mistral

    qwen = R.load("qwen25_7b_cocktail")
    cfg = compile_recipe(qwen, tmp_path, gpu=True)
    assert cfg["deepspeed"]["zero_optimization"]["stage"] == 2
    cmd = TR.launcher_command(qwen, cfg_path)
    assert cmd[cmd.index("--launcher") + 1] == "torchrun"
    assert {"--nnodes", "2", "--nproc_per_node", "8", "--rdzv_endpoint"} <= set(cmd)

    data = copy.deepcopy(llama.data)
    data["hardware"]["launcher"] = "ray"
    ray = R.load(write_recipe(tmp_path, data, "ray"))
    cfg = compile_recipe(ray, tmp_path, gpu=True)
    assert cfg["use_ray"] is True and cfg["ray_num_workers"] == 8
    assert TR.launcher_command(ray, cfg_path)[-2:] == ["--launcher", "python"]
    AX.validate_axolotl(cfg)

    assert TR.launcher_command(R.load("tiny_cpu"), cfg_path)[-2:] == ["--launcher", "python"]


def test_edited_mixture_changes_prepared_path(tmp_path):
    recipe = R.load("tiny_cpu")
    a, b = (
        AX.compile_config(
            recipe,
            stub_mixture(tmp_path, 3, digit * 16),
            tmp_path / "run",
            base_model="/m",
            prepared_root=tmp_path / "p",
            gpu=False,
        )
        for digit in "ab"
    )
    assert a["dataset_prepared_path"] != b["dataset_prepared_path"]


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message naming the file, the key and what was expected


def expect_error(tmp_path: Path, data: dict, *fragments: str) -> str:
    path = write_recipe(tmp_path, data)
    with pytest.raises(R.RecipeError) as info:
        R.load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_misspelled_keys_get_did_you_mean(tmp_path, tiny):
    data = copy.deepcopy(tiny)
    data["mixtrue"] = data.pop("mixture")
    expect_error(tmp_path, data, "unknown key 'mixtrue'", "Did you mean 'mixture'")

    data = copy.deepcopy(tiny)
    data["hyperparameters"]["learning_rat"] = data["hyperparameters"].pop("learning_rate")
    expect_error(tmp_path, data, "hyperparameters", "'learning_rat'", "'learning_rate'")

    data = copy.deepcopy(tiny)
    data["learning_rate"] = 1e-4  # an Axolotl key at the top level
    expect_error(tmp_path, data, "hyperparameters.learning_rate")

    # Axolotl's own validator would silently drop this typo; ours names it.
    data = copy.deepcopy(tiny)
    data["axolotl"] = {"lr_schedular_kwargs": {}}
    expect_error(tmp_path, data, "axolotl.lr_schedular_kwargs", "lr_scheduler_kwargs")

    data = copy.deepcopy(tiny)
    data["axolotl"] = {"dataset_processes": 2}  # deprecated: Axolotl would only warn
    expect_error(tmp_path, data, "axolotl.dataset_processes is deprecated", "dataset_num_proc")

    data = copy.deepcopy(tiny)
    data["axolotl"] = {"bf16": True}
    expect_error(tmp_path, data, "axolotl.bf16", "hardware.precision")

    data = copy.deepcopy(tiny)
    data["hardware"]["profile"] = "gpus"
    expect_error(tmp_path, data, "hardware.profile", "'gpu'")


def test_wrong_types_are_named(tmp_path, tiny):
    cases = [
        (("seed",), "42", "seed is str '42'; expected an integer"),
        (("hyperparameters", "sample_packing"), "yes", "sample_packing is str"),
        (("hyperparameters", "micro_batch_size"), True, "micro_batch_size is bool"),
        (("hyperparameters", "learning_rate"), -1.0, "must be > 0"),
        (("hyperparameters", "num_epochs"), "two", "positive number or 'auto'"),
        (("method",), "dora", "expected one of full, lora, qlora"),
    ]
    for keys, value, fragment in cases:
        data = copy.deepcopy(tiny)
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
        expect_error(tmp_path, data, fragment)


def test_missing_and_inconsistent_blocks(tmp_path, tiny):
    data = copy.deepcopy(tiny)
    del data["mixture"]
    expect_error(tmp_path, data, "missing required key(s) mixture")
    data = copy.deepcopy(tiny)
    del data["lora"]
    expect_error(tmp_path, data, "needs a `lora:` block")
    data = copy.deepcopy(tiny)
    data["method"] = "full"
    expect_error(tmp_path, data, "method is 'full'")
    data = copy.deepcopy(tiny)
    data["base_model"] = "builtin:tiny-lama"
    expect_error(tmp_path, data, "builtin:tiny-lama", "'tiny-llama'")


def test_gpu_only_options_refused_for_cpu_profile(tmp_path, tiny):
    for hw, fragment in [
        ({"precision": "bf16"}, "hardware.precision"),
        ({"attention": "flash_attention_2"}, "hardware.attention"),
        ({"lora_kernels": True}, "hardware.lora_kernels"),
        ({"strategy": "zero2"}, "hardware.strategy"),
    ]:
        data = copy.deepcopy(tiny)
        data["hardware"].update(hw)
        expect_error(tmp_path, data, fragment, "needs a GPU")
    data = copy.deepcopy(tiny)
    data["axolotl"] = {"liger_rms_norm": True}
    expect_error(tmp_path, data, "axolotl.liger_rms_norm needs a GPU")
    data = copy.deepcopy(tiny)
    data["method"] = "qlora"
    expect_error(tmp_path, data, "qlora", "needs a GPU")


def test_unknown_recipe_name_suggests():
    with pytest.raises(R.RecipeError, match="Did you mean tiny_cpu"):
        R.load("tiny_cpuu")


def test_gpu_recipe_on_cpu_machine_fails_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(TR.RUNS_DIR_ENV, str(tmp_path / "runs"))
    assert GPU_RECIPES
    for name in GPU_RECIPES:
        with pytest.raises(R.RecipeError, match="needs a CUDA GPU"):
            TR.plan(name, gpu=False)
    assert not (tmp_path / "runs").exists()  # nothing built, nothing written
    if AX.has_gpu():
        return  # the CLI check below is for machines without a GPU
    assert TR.main(["train", "phi3_cocktail"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_missing_mixture_and_model_path_fail_before_training(tmp_path, monkeypatch, tiny, capsys):
    monkeypatch.setenv(TR.RUNS_DIR_ENV, str(tmp_path / "runs"))
    data = copy.deepcopy(tiny)
    data["mixture"] = "no_such_mixture"
    path = write_recipe(tmp_path, data, "nomix")
    assert TR.main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no_such_mixture" in err and str(path) in err

    data = copy.deepcopy(tiny)
    data["mixture"] = "missing.jsonl"
    with pytest.raises(R.RecipeError, match="no such file"):
        TR.plan(str(write_recipe(tmp_path, data, "nojsonl")))

    data = copy.deepcopy(tiny)
    data["mixture"] = str(stub_mixture(tmp_path).jsonl)
    data["base_model"] = str(tmp_path / "no" / "model")
    assert TR.main(["train", str(write_recipe(tmp_path, data, "nomodel"))]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "nomodel").exists()


def test_flash_attention_needs_its_package(monkeypatch):
    monkeypatch.setattr(TR, "find_spec", lambda name: None)
    with pytest.raises(R.RecipeError, match="flash-attn package"):
        TR.check_hardware(R.load("phi3_cocktail"), gpu=True)


def test_multi_node_needs_rendezvous_env(monkeypatch):
    monkeypatch.setattr(TR, "find_spec", lambda name: object())  # as if flash-attn were installed
    qwen = R.load("qwen25_7b_cocktail")
    monkeypatch.delenv("NODE_RANK", raising=False)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(R.RecipeError, match="NODE_RANK and MASTER_ADDR"):
        TR.check_hardware(qwen, gpu=True)
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    TR.check_hardware(qwen, gpu=True)
    cmd = TR.launcher_command(qwen, Path("/x/axolotl.yaml"))
    assert cmd[cmd.index("--node_rank") + 1] == "1"
    assert cmd[cmd.index("--rdzv_endpoint") + 1] == "10.0.0.1:29500"


@pytest.mark.parametrize(
    ("template", "terminator"),
    [("chatml", "<|im_end|>"), ("phi_3", "<|end|>"), ("llama3", "<|eot_id|>"), ("qwen_25", "<|im_end|>"),
     ("gemma", "<end_of_turn>"), ("mistral_v2v3", None), ("tokenizer_default", None)],
)
def test_turn_terminator_is_read_off_axolotls_template(template, terminator):
    # None: the template ends a turn with the tokenizer's EOS, which Axolotl trains by default.
    assert AX.turn_terminator(template) == terminator

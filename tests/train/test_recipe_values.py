"""Recipe values are checked before any work: one-line errors naming the key, real registries."""

from __future__ import annotations

import pytest
from input_files import one_line_error, recipe_copy

from finbench import cli
from finbench.data import raw as D

ROOT = D.settings.ROOT

RECIPE_MUTANTS = {
    # name: (line in tiny_cpu.yaml, replacement, key named in the error, words in the error)
    "scheduler": ("  lr_scheduler: cosine", "  lr_scheduler: cosinee", "hyperparameters.lr_scheduler", "'cosine'"),
    "chat_template": ("chat_template: chatml", "chat_template: chatlm", "chat_template", "'chatml'"),
    "optimizer": ("  optimizer: adamw_torch", "  optimizer: adamw_torchh", "hyperparameters.optimizer", "'adamw_torch'"),
    "seed_big": ("seed: 42", "seed: 4294967296", "seed", ">= 0 and <= 4294967295"),
    "seed_negative": ("seed: 42", "seed: -1", "seed", ">= 0 and <= 4294967295"),
    "lr_inf": ("  learning_rate: 1.0e-3", "  learning_rate: .inf", "hyperparameters.learning_rate", "> 0 and <= 1"),
    "lr_nan": ("  learning_rate: 1.0e-3", "  learning_rate: .nan", "hyperparameters.learning_rate", "> 0 and <= 1"),
    "epochs_inf": ("  num_epochs: 1", "  num_epochs: .inf", "hyperparameters.num_epochs", "at most 1000"),
    "batch_1e30": ("  micro_batch_size: 2", "  micro_batch_size: 1e30", "hyperparameters.micro_batch_size", "integer"),
    "batch_huge": ("  micro_batch_size: 2", "  micro_batch_size: 1000000000000000000000000000000", "hyperparameters.micro_batch_size", ">= 1 and <= 4096"),
    "eval_batch": ("  batch_size: 8", "  batch_size: -5", "eval.batch_size", "'auto'"),
    "eval_task": ("  tasks: [fpb]", "  tasks: [fpbb]", "eval.tasks", "'fpb'"),
    "lora_module": ("  lora_target_linear: true", "  lora_target_modules: [q_proj, qq_proj]", "lora.lora_target_modules", "'q_proj'"),
    # tiny-llama has 2 decoder layers: PEFT would fail only after preprocessing and model load
    "lora_layer": ("  lora_target_linear: true", "  lora_target_linear: true\n  peft_layers_to_transform: [1, 2]",
                   "lora.peft_layers_to_transform", "has 2 decoder layers"),
    "lora_layer_dup": ("  lora_target_linear: true", "  lora_target_linear: true\n  peft_layers_to_transform: [1, 1]",
                       "lora.peft_layers_to_transform", "distinct integers >= 0"),
}


@pytest.mark.parametrize("case", sorted(RECIPE_MUTANTS))
def test_bad_recipe_value_fails_dry_run_with_one_line(case, tmp_path, capsys, monkeypatch):
    from finbench import cli
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    old, new, key, words = RECIPE_MUTANTS[case]
    text = (ROOT / "recipes" / "tiny_cpu.yaml").read_text()
    assert old + "\n" in text
    path = tmp_path / f"{case}.yaml"
    path.write_text(text.replace(old + "\n", new + "\n", 1))
    assert cli.main(["train", str(path), "--dry-run"]) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    # (torch prints its own import-time warnings on stderr; ours is the one finbench line)
    (err,) = [line for line in stderr.splitlines() if line.startswith("finbench")]
    assert err.startswith(f"finbench: error: {path}: key {key}")
    assert words in err
    assert not (tmp_path / "runs").exists()  # refused before any work (no mixture, no run folder)


def test_registries_accept_real_names(tmp_path, tiny_llama):
    from finbench.train import checks as C
    from finbench.train import recipe as R
    from finbench.train import schema as S
    local = C.model_module_names(str(tiny_llama))  # a local folder: from its config.json
    assert any(m.endswith(".self_attn.q_proj") for m in local)

    assert {"cosine", "linear", "constant_with_warmup", "one_cycle", "rex"} <= S.lr_scheduler_names()
    assert {"adamw_torch", "adamw_torch_fused", "sgd", "optimi_adamw", "muon"} <= S.optimizer_names()
    text = (ROOT / "recipes" / "tiny_cpu.yaml").read_text()
    text = text.replace("  lora_target_linear: true\n", "  lora_target_modules: [q_proj, v_proj, down_proj]\n")
    text = text.replace("  tasks: [fpb]\n", "  tasks: [finbench, fpb_mc]\n")
    text = text.replace("lr_scheduler: cosine", "lr_scheduler: one_cycle")
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    assert C.check_references(R.load(path)) == []
    # Phi-3 fuses q/k/v: a Llama module name is refused there, its own name accepted.
    assert "qkv_proj" in {m.rsplit(".", 1)[-1] for m in C.model_module_names("builtin:tiny-phi3")}
    path.write_text(text.replace("builtin:tiny-llama", "builtin:tiny-phi3"))
    with pytest.raises(R.RecipeError, match=r"lora.lora_target_modules: 'q_proj' names no module"):
        C.check_references(R.load(path))


def test_lora_modules_of_an_uncached_hub_model_are_left_to_load_time(tmp_path):
    from finbench.train import checks as C
    from finbench.train import recipe as R
    text = (ROOT / "recipes" / "tiny_cpu.yaml").read_text()
    text = text.replace("builtin:tiny-llama", "example-org/not-cached-model")
    text = text.replace("  lora_target_linear: true\n", "  lora_target_modules: [q_proj]\n")
    path = tmp_path / "hub.yaml"
    path.write_text(text)
    (warning,) = C.check_references(R.load(path))
    assert "not checked" in warning and "lora.lora_target_modules" in warning


@pytest.mark.parametrize("name", ["m" * 300, "org/" + "m" * 300, "a\x00b"])
def test_dry_run_of_an_overlong_base_model_is_one_line(tmp_path, capsys, name) -> None:
    path = recipe_copy(tmp_path, base_model=name)
    assert cli.main(["train", str(path), "--dry-run"]) == 2
    err = one_line_error(capsys, tmp_path)
    assert "r.yaml: key base_model" in err


def test_builtin_layer_counts_are_the_built_models(tiny_llama):
    # checks.py reads a builtin's config without building it (the arch's default config says 32 layers)
    import json

    from finbench.train import checks as C
    from finbench.train import models as M
    built = json.loads((tiny_llama / "config.json").read_text())["num_hidden_layers"]
    assert C._model_config("builtin:tiny-llama").num_hidden_layers == built == M.TINY_LAYERS
    assert C._model_config("builtin:smollm2").num_hidden_layers == M.SMOLLM2_LAYERS
    assert not any(".layers.2." in m for m in C.model_module_names("builtin:tiny-llama"))
    # (SmolLM2's built count: tests/train/test_models.py, on the converted model)

"""Trust at the edges (issue 13): duplicate YAML keys, bad raw files, representative --limit slices."""

from __future__ import annotations

import pytest

from finbench import data as D

ROOT = D.settings.ROOT


# --- duplicate keys ---------------------------------------------------------------------------


def _duplicate(text: str, after: str, line: str) -> str:
    """`text` with `line` inserted right after the first line starting with `after`."""
    lines = text.splitlines(keepends=True)
    i = next(n for n, ln in enumerate(lines) if ln.startswith(after))
    return "".join(lines[: i + 1] + [line + "\n"] + lines[i + 1 :])


def _line_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


def test_duplicate_key_in_recipe_is_refused_by_name(tmp_path):
    from finbench import recipes as R

    text = _duplicate((ROOT / "recipes" / "tiny_cpu.yaml").read_text(), "seed:", "seed: 7")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(R.RecipeError) as err:
        R.load(path)
    assert f"{path}:{_line_of(text, 'seed: 7')}: duplicate key 'seed'" in str(err.value)
    # nested blocks too
    text = _duplicate(
        (ROOT / "recipes" / "tiny_cpu.yaml").read_text(), "  warmup_steps:", "  warmup_steps: 3"
    )
    path.write_text(text)
    with pytest.raises(R.RecipeError, match=r"dup.yaml:\d+: duplicate key 'warmup_steps'"):
        R.load(path)


def test_duplicate_key_in_mixture_is_refused_by_name(tmp_path):
    from finbench import mixtures as M

    text = _duplicate((ROOT / "mixtures" / "demo.yaml").read_text(), "    factor: 0.25", "    factor: 3")
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    with pytest.raises(M.MixtureError) as err:
        M.load_mixture(str(path))
    assert f"{path}:{_line_of(text, '    factor: 3')}: duplicate key 'factor'" in str(err.value)


def test_duplicate_key_in_design_is_refused_by_name(tmp_path):
    from finbench import mixtures as M

    src = (ROOT / "mixtures" / "designs" / "paper55.yaml").read_text()
    src = src.replace("base: ../paper_cocktail.yaml", f"base: {ROOT / 'mixtures' / 'paper_cocktail.yaml'}")
    text = _duplicate(src, "design:", "design: other")
    path = tmp_path / "paper55.yaml"
    path.write_text(text)
    with pytest.raises(M.MixtureError) as err:
        M.generate_design(path)
    assert f"{path}:{_line_of(text, 'design: other')}: duplicate key 'design'" in str(err.value)


def test_duplicate_key_in_sweep_is_refused_by_name(tmp_path):
    from finbench import sweep as S

    text = _duplicate((ROOT / "recipes" / "sweeps" / "mini.yaml").read_text(), "seeds:", "seeds: [3]")
    path = tmp_path / "mini.yaml"
    path.write_text(text)
    with pytest.raises(S.SweepError) as err:
        S.load_sweep(str(path))
    assert f"{path}:{_line_of(text, 'seeds: [3]')}: duplicate key 'seeds'" in str(err.value)


def test_yaml_merge_override_is_not_a_duplicate(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 5\n")
    assert D.read_yaml(path)["d"] == {"x": 5, "y": 2}


# --- recipe values checked before any work ------------------------------------------------------

RECIPE_MUTANTS = {
    # name: (line in tiny_cpu.yaml, replacement, key named in the error, words in the error)
    "scheduler": ("  lr_scheduler: cosine", "  lr_scheduler: cosinee", "hyperparameters.lr_scheduler", "'cosine'"),
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


def test_registries_accept_real_names(tmp_path):
    from finbench import recipes as R

    assert {"cosine", "linear", "constant_with_warmup", "one_cycle", "rex"} <= R.lr_scheduler_names()
    assert {"adamw_torch", "adamw_torch_fused", "sgd", "optimi_adamw", "muon"} <= R.optimizer_names()
    text = (ROOT / "recipes" / "tiny_cpu.yaml").read_text()
    text = text.replace("  lora_target_linear: true\n", "  lora_target_modules: [q_proj, v_proj, down_proj]\n")
    text = text.replace("  tasks: [fpb]\n", "  tasks: [finbench, fpb_mc]\n")
    text = text.replace("lr_scheduler: cosine", "lr_scheduler: one_cycle")
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    assert R.check_references(R.load(path)) == []
    # Phi-3 fuses q/k/v: a Llama module name is refused there, its own name accepted.
    assert "qkv_proj" in {m.rsplit(".", 1)[-1] for m in R.model_module_names("builtin:tiny-phi3")}
    path.write_text(text.replace("builtin:tiny-llama", "builtin:tiny-phi3"))
    with pytest.raises(R.RecipeError, match=r"lora.lora_target_modules: 'q_proj' names no module"):
        R.check_references(R.load(path))


def test_lora_modules_of_an_uncached_hub_model_are_left_to_load_time(tmp_path, monkeypatch):
    from finbench import recipes as R

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    text = (ROOT / "recipes" / "tiny_cpu.yaml").read_text()
    text = text.replace("builtin:tiny-llama", "example-org/not-cached-model")
    text = text.replace("  lora_target_linear: true\n", "  lora_target_modules: [q_proj]\n")
    path = tmp_path / "hub.yaml"
    path.write_text(text)
    (warning,) = R.check_references(R.load(path))
    assert "not checked" in warning and "lora.lora_target_modules" in warning

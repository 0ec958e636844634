"""The Axolotl plugin every compiled config names: it seeds the random generators from the config's
`seed` before the model and its adapter are built.

Axolotl 0.19 passes `seed` to the Trainer only, and `Trainer.__init__` seeds after the model is
loaded, so LoRA's A matrices (and any freshly initialised weights) came from torch's per-process
random seed: two runs of one recipe parted at the first real update and the demo's score moved
run to run (+0.04 to +0.17). The same bug, found and fixed elsewhere: MakazhanAlpamys/Soup#354,
EleutherAI/bergson#329. Seeded here, two runs give the same adapter bytes on CPU
(tests/train/test_axolotl_runs.py).
"""

from __future__ import annotations

from typing import Any

from axolotl.integrations.base import BasePlugin


class SeedPlugin(BasePlugin):
    """Seeds python, numpy and torch (every device) from `cfg.seed` at model and adapter load."""

    def pre_model_load(self, cfg: Any) -> None:
        _seed(cfg)

    def pre_lora_load(self, cfg: Any, model: Any) -> None:
        # again right before the adapter, so its initial weights depend on the seed alone, not on
        # how much randomness the model load consumed (which can change between library versions)
        _seed(cfg)


def _seed(cfg: Any) -> None:
    from transformers import set_seed

    if cfg.get("seed") is not None:
        set_seed(int(cfg["seed"]))

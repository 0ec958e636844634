"""Library noise, filtered where the project loads tasks and models; `finbench -v` shows it all.

Each entry is (logger, text): a record of that logger containing the text is dropped unless
FINBENCH_VERBOSE is set. Only messages that say nothing about the user's run are listed:
- lm-eval warns on every load of a task with a `custom_dataset` loader that custom kwargs could be
  passed through `--metadata` (two lines per task: ~30 lines for `finbench tasks --sizes`);
- torchao logs the CUDA kernels it cannot load on a CPU machine;
- torch warns that torchao still registers Enum pytree constants.
"""

from __future__ import annotations

import logging

from finbench import settings

NOISE: tuple[tuple[str, str], ...] = (
    ("lm_eval.api.task", "Custom kwargs can be passed to `--metadata`"),
    ("torchao", "Failed to load "),
    ("torch.utils._pytree", "is an Enum subclass and is now natively supported"),
)


class _DropNoise(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return settings.verbose() or self.text not in record.getMessage()


def install() -> None:
    """Attach the filters (idempotent); FINBENCH_VERBOSE is read at each record, not here."""
    for name, text in NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) and f.text == text for f in logger.filters):
            logger.addFilter(_DropNoise(text))

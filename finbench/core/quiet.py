"""Library noise, filtered where the project loads tasks and models; `finbench -v` shows it all.

Each entry is (logger, text): a record of that logger containing the text is dropped unless
FINBENCH_VERBOSE is set. Only messages that say nothing about the user's run are listed:
- lm-eval warns on every load of a task with a `custom_dataset` loader that custom kwargs could be
  passed through `--metadata` (two lines per task: ~30 lines for `finbench tasks --sizes`);
- torchao logs the CUDA kernels it cannot load on a CPU machine;
- bitsandbytes logs that its optional CPU 4-bit kernel (from the `kernels` hub package) cannot be
  fetched on an offline machine; nothing here quantises to 4 bits on CPU;
- torch warns that torchao still registers Enum pytree constants.

`demo_mode()` goes further for `make demo`, whose output is a result table: library loggers show
errors only, library Python warnings are ignored, and progress bars appear only on a terminal (in a
log or a pipe they would be carriage-return debris); the project's own loggers keep warnings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from finbench.core import settings

NOISE: tuple[tuple[str, str], ...] = (
    ("lm_eval.api.task", "Custom kwargs can be passed to `--metadata`"),
    ("torchao", "Failed to load "),
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    ("torch.utils._pytree", "is an Enum subclass and is now natively supported"),
)
# Libraries whose INFO/WARNING records and Python warnings the demo drops unless verbose.
LIBRARIES = ("lm_eval", "transformers", "datasets", "accelerate", "peft", "torchao", "bitsandbytes",
             "kernels", "huggingface_hub", "axolotl", "torch", "evaluate", "sklearn", "numexpr")


class _DropNoise(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return settings.verbose() or self.text not in record.getMessage()


class _LibrariesErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return (settings.verbose() or record.levelno >= logging.ERROR
                or record.name.split(".", 1)[0] not in LIBRARIES)


def install() -> None:
    """Attach the filters (idempotent); FINBENCH_VERBOSE is read at each record, not here."""
    for name, text in NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) and f.text == text for f in logger.filters):
            logger.addFilter(_DropNoise(text))


def demo_mode(stream: TextIO | None = None) -> None:
    """Quiet the libraries for a result-first command (see the module doc); no-op when verbose."""
    install()
    if settings.verbose():
        logging.basicConfig(level=logging.INFO, stream=stream or sys.stderr)
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s",
                        stream=stream or sys.stderr)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    # Libraries set their own logger levels when imported (axolotl does), so the handler filters too.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _LibrariesErrorsOnly) for f in handler.filters):
            handler.addFilter(_LibrariesErrorsOnly())
    pattern = "|".join(LIBRARIES)
    warnings.filterwarnings("ignore", module=rf"({pattern})(\.|$)")
    # transformers / datasets / hub read these at import or at each bar
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@contextlib.contextmanager
def bars_to(log: Path) -> Iterator[None]:
    """Progress bars (raw stderr writes: lm-eval's tqdm) go to `log` unless stderr is a terminal or
    the run is verbose; logging keeps its own handler, so warnings still reach the user."""
    if settings.verbose() or sys.stderr.isatty():
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh, contextlib.redirect_stderr(fh):
        yield

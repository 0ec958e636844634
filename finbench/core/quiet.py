"""Library noise, filtered where the project loads tasks and models; `finbench -v` shows it all.

Each entry is (logger, text): a record of that logger containing the text is dropped unless the
settings say verbose (FINBENCH_VERBOSE, `finbench -v`). Only messages that say nothing about the user's run are listed:
- lm-eval warns on every load of a task with a `custom_dataset` loader that custom kwargs could be
  passed through `--metadata` (two lines per task: ~30 lines for `finbench tasks --sizes`);
- torchao logs the CUDA kernels it cannot load on a CPU machine;
- bitsandbytes logs that its optional CPU 4-bit kernel (from the `kernels` hub package) cannot be
  fetched on an offline machine; nothing here quantises to 4 bits on CPU;
- torch warns that torchao still registers Enum pytree constants.

`demo_mode()` goes further for `make demo`, whose output is a result table: library loggers show
errors only, library Python warnings are ignored, and progress bars appear only on a terminal (in a
log or a pipe they would be carriage-return debris); the project's own loggers keep warnings.
In this process that goes through the libraries' own APIs (transformers' verbosity, datasets' and
huggingface_hub's progress bars); the processes it starts (Axolotl) get the variables those
libraries read at their import, carried by the Settings value `demo_mode` returns.
"""

from __future__ import annotations

import contextlib
import logging
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
    """Attach the filters (idempotent); the settings' `verbose` is asked at each record, not here."""
    for name, text in NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) and f.text == text for f in logger.filters):
            logger.addFilter(_DropNoise(text))


def demo_mode(stream: TextIO | None = None, s: settings.Settings | None = None) -> settings.Settings:
    """Quiet the libraries for a result-first command (see the module doc); returns `s` (default:
    the current settings) with the library variables that quiet the processes it starts too."""
    s = s or settings.current()
    install()
    if s.verbose:
        logging.basicConfig(level=logging.INFO, stream=stream or sys.stderr)
        return s
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
    return s.with_library(**_quiet_libraries(bars=sys.stderr.isatty()))


def _quiet_libraries(bars: bool) -> dict[str, str]:
    """In this process through the libraries' own APIs; for a child process (Axolotl), the
    variables they read at their import instead, returned to travel with the settings."""
    from datasets.utils import disable_progress_bars as datasets_bars_off
    from huggingface_hub.utils import disable_progress_bars as hub_bars_off
    from transformers.utils import logging as transformers_logging

    # transformers gives its logger its own handler (no propagation): the level is set there
    transformers_logging.set_verbosity_error()
    child = {"TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    if not bars:
        datasets_bars_off()
        hub_bars_off()
        child.update(HF_DATASETS_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    return child


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

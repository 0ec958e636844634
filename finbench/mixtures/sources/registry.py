"""The source types a mixture's YAML can name. A new source type = one module + one line here.

Under `dataset:` several may be declared (e.g. `raw:` for offline runs and `hub:` otherwise); the
first one in this order that is usable now is read.
"""

from __future__ import annotations

from finbench.mixtures.sources.base import SourceType
from finbench.mixtures.sources.csv import CsvSource
from finbench.mixtures.sources.file import FileSource
from finbench.mixtures.sources.hub import HubSource
from finbench.mixtures.sources.raw import RawSource
from finbench.mixtures.sources.task import TaskSource

REGISTRY: dict[str, type[SourceType]] = {
    "task": TaskSource,
    "file": FileSource,
    "csv": CsvSource,
    "raw": RawSource,
    "hub": HubSource,
}
COMPONENT_SOURCES = tuple(k for k, s in REGISTRY.items() if not s.in_dataset)
DATASET_SOURCES = tuple(k for k, s in REGISTRY.items() if s.in_dataset)

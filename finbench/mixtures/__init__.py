"""Training mixtures: build one exact, reproducible JSONL of chat examples from a YAML recipe.

The package follows the pipeline:

- `spec`: a mixture file parsed into typed objects (`Mixture`, `Component`, sizes);
- `catalog`: find mixtures by name, design member or path; `design`: the design generator;
- `sources/`: where a component's rows come from, one module per source type behind
  `sources.base.Source` and named in `sources.registry.REGISTRY` (task, file, csv, raw, hub);
- `formats`: how an external row becomes chat messages (alpaca, sharegpt, messages, fields);
- `sampling`: sizes and bottom-k selection by seeded row keys;
- `contamination`: the dev/test overlap guard;
- `build`: selection, ordering, the content-hashed output and its manifest; `cli`: the commands.
"""

from __future__ import annotations

from typing import Any

from finbench.core import settings
from finbench.mixtures import formats
from finbench.mixtures.build import (
    BUILDER_VERSION,
    BuildResult,
    ComponentResult,
    Selected,
    build,
    default_out,
    fingerprint,
    output_paths,
    remove_stale_temporaries,
)
from finbench.mixtures.catalog import DESIGNS_DIR_NAME, list_mixtures, load_mixture
from finbench.mixtures.cli import add_cli
from finbench.mixtures.contamination import (
    CONTAMINATION_MODES,
    Contamination,
    ContaminationIndex,
    EvalItem,
    guard_tasks,
    load_eval_items,
    normalise,
    tokens,
)
from finbench.mixtures.design import design_members, generate_design
from finbench.mixtures.errors import MAX_FACTOR, MAX_ROWS, MixtureError
from finbench.mixtures.formats import FORMATS, PRESET_FORMATS, ROLE_ALIASES, parse_format, render_row
from finbench.mixtures.sampling import Size, resolve_sizes, row_keys
from finbench.mixtures.sources.base import Source
from finbench.mixtures.sources.registry import REGISTRY
from finbench.mixtures.sources.rows import RowSource
from finbench.mixtures.sources.task import TaskSource, task_fingerprint
from finbench.mixtures.spec import COMPONENT_KEYS, Component, Mixture, parse_mixture


def open_source(comp: Component, where: str) -> Source:
    """The rows of one component (the registry picks the source type)."""
    return comp.open(where)


DatasetSource = open_source  # the name callers of the single-module version used


def __getattr__(name: str) -> Any:
    # read when asked, so FINBENCH_MIXTURES_DIR / FINBENCH_RUNS_DIR set at run time are honoured
    if name == "MIXTURES_DIR":
        return settings.mixtures_dir()
    if name == "DEFAULT_OUT":
        return default_out()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILDER_VERSION", "COMPONENT_KEYS", "CONTAMINATION_MODES", "DESIGNS_DIR_NAME", "FORMATS",
    "MAX_FACTOR", "MAX_ROWS", "PRESET_FORMATS", "REGISTRY", "ROLE_ALIASES", "BuildResult",
    "Component", "ComponentResult", "Contamination", "ContaminationIndex", "DatasetSource",
    "EvalItem", "Mixture", "MixtureError", "RowSource", "Selected", "Size", "Source",
    "TaskSource", "add_cli", "build", "design_members", "fingerprint", "formats", "generate_design",
    "guard_tasks", "list_mixtures", "load_eval_items", "load_mixture", "normalise", "open_source",
    "output_paths", "parse_format", "parse_mixture", "remove_stale_temporaries", "render_row",
    "resolve_sizes", "row_keys", "task_fingerprint", "tokens",
]

"""Finding mixtures: `mixtures/NAME.yaml`, design members `DESIGN/MEMBER`, or a file path."""

from __future__ import annotations

import sys
from pathlib import Path

from finbench.core import settings
from finbench.core import validate as V
from finbench.core.files import did_you_mean, is_file
from finbench.mixtures.design import generate_design, read_yaml
from finbench.mixtures.errors import MixtureError
from finbench.mixtures.spec import Mixture, parse_mixture

DESIGNS_DIR_NAME = "designs"


def designs_dir(mixtures_dir: Path | None = None) -> Path:
    return Path(mixtures_dir or settings.mixtures_dir()) / DESIGNS_DIR_NAME


def list_mixtures(mixtures_dir: Path | None = None, *, warn: bool = True) -> list[str]:
    """Mixture files and design members; a broken design is reported and skipped, not fatal."""
    d = Path(mixtures_dir or settings.mixtures_dir())
    names = sorted(p.stem for p in d.glob("*.yaml"))
    for design in sorted(designs_dir(d).glob("*.yaml")):
        try:
            names += [f"{design.stem}/{m}" for m in generate_design(design)]
        except MixtureError as exc:
            if warn:
                print(f"warning: skipped a broken design: {exc}", file=sys.stderr)
    return names


def load_mixture(name: str, mixtures_dir: Path | None = None) -> Mixture:
    """A mixture by file path, by name (`mixtures/NAME.yaml`) or design member (`DESIGN/MEMBER`)."""
    d = Path(mixtures_dir or settings.mixtures_dir())
    as_path = Path(name)
    if name.endswith((".yaml", ".yml")):
        if not is_file(as_path):
            raise MixtureError(f"{as_path}: mixture file missing")
        return parse_mixture(read_yaml(as_path), name=as_path.stem, path=as_path.resolve())
    path = d / f"{name}.yaml"
    if is_file(path):
        return parse_mixture(read_yaml(path), name=name, path=path)
    if "/" in name:
        design, member = name.split("/", 1)
        dpath = designs_dir(d) / f"{design}.yaml"
        if is_file(dpath):
            members = generate_design(dpath)
            if member not in members:
                raise MixtureError(
                    f"{dpath}: no member {member!r}.{did_you_mean(member, members)} Members: {', '.join(members)}"
                )
            base = Path(members[member].pop("_base"))
            return parse_mixture(members[member], name=name, path=base)
    known = list_mixtures(d, warn=False) if d.is_dir() else []
    hint = did_you_mean(name, known)
    raise MixtureError(
        f"unknown mixture {V.short(name)}: no {V.short(str(path))}."
        f"{hint or ' Known: ' + (V.listing(known) or '(none)')}"
    )

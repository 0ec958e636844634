"""Mixture values are checked when the file is read: the hub block of a component built from raw files."""

from __future__ import annotations

import pytest
from input_files import demo_mixture, parse_mixture

from finbench import mixtures as M


@pytest.mark.parametrize(
    ("field", "value"),
    [("split", {"a": 1}), ("split", float("nan")), ("split", None), ("path", "/"),
     ("path", "../../etc/passwd"), ("revision", ""), ("revision", "ma\x00in"), ("revision", None),
     ("name", {"a": 1})],
)
def test_hub_block_of_a_raw_component_is_validated(field, value) -> None:
    data = demo_mixture()
    comp = data["components"]["openorca"]["dataset"]
    assert "raw" in comp  # the raw files are what a build reads here
    comp["hub"][field] = value
    with pytest.raises(M.MixtureError, match=rf"t\.yaml: components\.openorca\.dataset\.hub\.{field}: "):
        parse_mixture(data)


def test_good_hub_blocks_still_pass() -> None:
    data = demo_mixture()
    data["components"]["openorca"]["dataset"]["hub"].update(revision="refs/convert/parquet", split="train[:10%]")
    assert parse_mixture(data).components["openorca"]

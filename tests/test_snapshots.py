"""Snapshots guard the YAML against unreviewed change; behaviour is proven elsewhere."""

from __future__ import annotations

import pytest
from variants import VARIANTS


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_synthesized_yaml(synth, snapshot, variant):
    m = synth(VARIANTS[variant])
    assert {f.name: f.read_text() for f in m.files} == snapshot

"""The chart ships the same CRD files as the top-level crds/ folder that `lora-operator crds write` generates."""

from __future__ import annotations

import pytest

from tests.helm.helm_cli import CHART_DIR, REPO

pytestmark = pytest.mark.unit

FIX = "run scripts/sync-chart-crds (or: cp crds/*.yaml helm/lora-operator/crds/)"


def crd_files(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml"))}


def test_chart_has_every_crd() -> None:
    generated = crd_files(REPO / "crds")
    shipped = crd_files(CHART_DIR / "crds")

    assert generated, "crds/ has no CRD file; run `lora-operator crds write`"
    assert sorted(shipped) == sorted(generated), f"the chart's CRD files differ from crds/: {FIX}"


def test_chart_crds_identical() -> None:
    generated = crd_files(REPO / "crds")
    shipped = crd_files(CHART_DIR / "crds")

    stale = sorted(name for name in generated if shipped.get(name) != generated[name])
    assert stale == [], f"the chart's copies of {stale} differ from crds/: {FIX}"

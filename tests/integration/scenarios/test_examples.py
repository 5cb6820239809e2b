"""Every example runs in its quick mode."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["node_test_example", "routing_comparison"])
def test_example_runs_quickly(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _load(name).main(quick=True) == 0
    out = capsys.readouterr().out
    assert ("Throughput=" in out) if name == "node_test_example" else ("cache_aware" in out)


def test_every_example_is_covered() -> None:
    covered = {"node_test_example", "routing_comparison", "custom_policy"}  # custom_policy: test_routing.py
    assert {p.stem for p in EXAMPLES.glob("*.py")} == covered

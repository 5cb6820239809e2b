"""Real SGLang on a GPU (skips itself without a GPU or without the sglang package)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios.node import NodeTest

pytestmark = pytest.mark.gpu


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and os.system("nvidia-smi -L > /dev/null 2>&1") == 0


@pytest.mark.skipif(not _has_gpu(), reason="needs an NVIDIA GPU")
@pytest.mark.skipif(
    importlib.util.find_spec("sglang") is None, reason="needs the sglang package (pip install '.[sglang]')"
)
@pytest.mark.skipif(not os.environ.get("SGLANG_TEST_MODEL"), reason="set SGLANG_TEST_MODEL to a local model path")
def test_node_test_on_real_sglang(tmp_path: Path) -> None:
    cfg = NodeConfig(
        model_path=os.environ["SGLANG_TEST_MODEL"],
        backend="sglang",
        port=0,
        gpu_id=0,
        dataset_name="random",
        random_input_len=256,
        random_output_len=32,
        num_prompts=20,
        request_rate=5.0,
        output_dir=tmp_path,
        progress=False,
    )
    results = NodeTest(cfg).run()
    assert results.summary["completed"] == 20
    assert results.summary["mean_ttft"] > 0

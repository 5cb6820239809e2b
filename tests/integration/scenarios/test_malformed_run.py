"""A whole run against a server that streams malformed chunks: it finishes, each bad request is a
failed record with a cause, the summary is written, and the exit code says requests failed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, wait_http

SERVER = Path(__file__).with_name("malformed_server.py")


def test_a_run_against_malformed_chunks_finishes_records_every_cause_and_exits_1(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(SERVER), str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc=server)
        out = tmp_path / "out"
        argv = [
            sys.executable,
            "-m",
            "sglang_test_framework",
            "node",
            "--backend",
            "external",
            "--url",
            f"http://127.0.0.1:{port}",
            "--model-path",
            "m",
            "--dataset-name",
            "random",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--num-prompts",
            "20",
            "--request-rate",
            "inf",
            "--warmup-requests",
            "0",
            "--no-collect-timeseries",
            "--no-write-plots",
            "--output-dir",
            str(out),
            "-q",
        ]
        proc = subprocess.run(argv, capture_output=True, timeout=300)
    finally:
        server.kill()
        server.wait()
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    assert "10 of 20 requests failed" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert (summary["completed"], summary["failed"]) == (10, 10)
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 20
    failed = [r for r in records if not r["success"]]
    assert len(failed) == 10
    assert all(r["error_type"] == "stream" and r["error"] for r in failed)
    causes = " ".join(r["error"] for r in failed)
    # orjson decodes deeply nested JSON (json raised RecursionError): such an event is not an object
    for needle in ("meta_info", "completion_tokens", "cached_tokens", "expected a JSON object"):
        assert needle in causes, (needle, causes)
    assert all(r["cached_tokens"] is None or isinstance(r["cached_tokens"], int) for r in records)

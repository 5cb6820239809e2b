"""Exact command lines and GPU pinning for real SGLang, the simulator and the router."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.redact import redact_argv
from sglang_test_framework.servers.argv import (
    SIM_API_KEY_ENV,
    coverage_include,
    coverage_rc,
    coverage_rcfile,
    router_argv,
    server_argv,
    server_env,
)


def test_sglang_argv_is_exact_and_only_has_flags_the_user_set() -> None:
    cfg = ServerConfig(
        model_path="/models/llama",
        backend="sglang",
        port=31000,
        tp_size=2,
        gpu_id=2,
        max_running_requests=128,
        mem_fraction_static=0.85,
        enable_metrics=False,
        enable_cache_report=False,
    )
    assert server_argv(cfg, 31000) == [
        sys.executable,
        "-m",
        "sglang.launch_server",
        "--model-path",
        "/models/llama",
        "--host",
        "127.0.0.1",
        "--port",
        "31000",
        "--tp-size",
        "2",
        "--max-running-requests",
        "128",
        "--mem-fraction-static",
        "0.85",
    ]


def test_sglang_env_pins_gpus_for_tensor_parallel() -> None:
    cfg = ServerConfig(model_path="m", backend="sglang", gpu_id=4, tp_size=4)
    env = server_env(cfg, base={"PATH": "/bin"})
    assert env["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"
    assert env["PATH"] == "/bin"


def test_sglang_flag_names_follow_the_interfaces_sheet() -> None:
    cfg = ServerConfig(
        model_path="m",
        backend="sglang",
        chunked_prefill_size=4096,
        max_prefill_tokens=8192,
        schedule_policy="lpm",
        schedule_conservativeness=1.3,
        enable_torch_compile=True,
        disable_radix_cache=True,
        api_key="k",
        context_length=4096,
        random_seed=1,
        extra_args=["--enable-hierarchical-cache", "--hicache-ratio", "2"],
    )
    argv = server_argv(cfg, 30000)
    for flag in (
        "--chunked-prefill-size",
        "--max-prefill-tokens",
        "--schedule-policy",
        "--schedule-conservativeness",
        "--enable-torch-compile",
        "--disable-radix-cache",
        "--enable-metrics",
        "--enable-cache-report",
        "--api-key",
        "--context-length",
        "--random-seed",
    ):
        assert flag in argv, flag
    assert argv[-3:] == ["--enable-hierarchical-cache", "--hicache-ratio", "2"]
    assert argv[argv.index("--chunked-prefill-size") + 1] == "4096"


def test_sim_gets_the_same_flags_plus_sim_flags_and_no_gpu_pinning() -> None:
    cfg = ServerConfig(
        model_path="m",
        backend="sim",
        max_running_requests=8,
        server_id="worker_1",
        sim_profile="llama-3-8b-h100",
        sim_args=["--sim-fail-first-n", "2"],
    )
    argv = server_argv(cfg, 40000)
    assert argv[1:3] == ["-m", "sglang_test_framework.sim"]
    assert argv[argv.index("--max-running-requests") + 1] == "8"
    assert argv[argv.index("--sim-worker-id") + 1] == "worker_1"
    assert argv[-2:] == ["--sim-fail-first-n", "2"]
    assert "CUDA_VISIBLE_DEVICES" not in server_env(cfg, base={})


def test_router_argv_uses_router_flag_names() -> None:
    argv = router_argv(RouterConfig(cache_threshold=0.5), "cache_aware", ["http://a:1", "http://b:2"], 5000, 5001)
    assert argv[1:3] == ["-m", "sglang_router.launch_router"]
    i = argv.index("--worker-urls")
    assert argv[i + 1 : i + 3] == ["http://a:1", "http://b:2"]
    assert argv[argv.index("--policy") + 1] == "cache_aware"
    assert argv[argv.index("--prometheus-port") + 1] == "5001"
    assert argv[argv.index("--cache-threshold") + 1] == "0.5"


def test_api_key_is_in_argv_only_for_real_sglang_and_the_sim_gets_it_from_its_environment() -> None:
    sim = ServerConfig(model_path="m", backend="sim", api_key="secret-xyz")
    assert "secret-xyz" not in " ".join(server_argv(sim, 40000))
    assert server_env(sim, base={})[SIM_API_KEY_ENV] == "secret-xyz"
    real = ServerConfig(model_path="m", backend="sglang", api_key="secret-xyz")
    argv = server_argv(real, 40000)
    assert argv[argv.index("--api-key") + 1] == "secret-xyz"
    assert SIM_API_KEY_ENV not in server_env(real, base={})


def test_redact_argv_hides_secret_flag_values_in_both_spellings() -> None:
    argv = ["python", "-m", "x", "--api-key", "s1", "--port", "1", "--admin-api-key=s2", "--router-api-key", "s3"]
    assert redact_argv(argv) == [
        "python",
        "-m",
        "x",
        "--api-key",
        "***",
        "--port",
        "1",
        "--admin-api-key=***",
        "--router-api-key",
        "***",
    ]


def test_coverage_runs_the_sim_under_coverage_py_with_the_runs_rc_file(tmp_path: Path) -> None:
    cfg = ServerConfig(model_path="m", backend="sim", coverage=True, coverage_dir=tmp_path / "cov", server_id="s0")
    assert server_argv(cfg, 40000) == [
        sys.executable,
        "-m",
        "coverage",
        "run",
        f"--rcfile={tmp_path / 'cov' / '.coveragerc'}",
        "-m",
        "sglang_test_framework.sim",
        "--model-path",
        "m",
        "--host",
        "127.0.0.1",
        "--port",
        "40000",
        "--tp-size",
        "1",
        "--enable-metrics",
        "--enable-cache-report",
        "--sim-worker-id",
        "s0",
    ]
    assert coverage_rcfile(tmp_path / "cov") == tmp_path / "cov" / ".coveragerc"


def test_coverage_runs_real_sglang_under_coverage_py_and_leaves_the_rest_of_argv_and_env_alone(
    tmp_path: Path,
) -> None:
    plain = ServerConfig(model_path="/models/llama", backend="sglang", gpu_id=2, max_running_requests=64)
    covered = plain.model_copy(update={"coverage": True, "coverage_dir": tmp_path})
    assert server_argv(covered, 31000) == [
        sys.executable,
        "-m",
        "coverage",
        "run",
        f"--rcfile={tmp_path / '.coveragerc'}",
        *server_argv(plain, 31000)[1:],
    ]
    assert server_argv(plain, 31000)[1:3] == ["-m", "sglang.launch_server"]
    assert server_env(covered, base={}) == server_env(plain, base={})


def test_coverage_rc_measures_the_servers_package_in_parallel_files_saved_on_sigterm(tmp_path: Path) -> None:
    sim = ServerConfig(model_path="m", backend="sim", coverage=True)
    assert coverage_rc(sim, tmp_path).splitlines()[1:] == [
        "[run]",
        f"data_file = {tmp_path / '.coverage'}",
        "parallel = True",
        "sigterm = True",
        "concurrency = multiprocessing, thread",
        "include =",
        "    */sglang_test_framework/sim/*",
    ]
    sglang = ServerConfig(model_path="m", backend="sglang", coverage=True)
    assert coverage_include(sglang) == ["*/sglang/*"]
    narrowed = sglang.model_copy(update={"coverage_include": ["*/sglang/srt/mem_cache/*", "*/sglang/srt/managers/*"]})
    assert coverage_rc(narrowed, tmp_path).endswith(
        "include =\n    */sglang/srt/mem_cache/*\n    */sglang/srt/managers/*\n"
    )


def test_coverage_rc_escapes_dollars_coverage_py_would_expand() -> None:
    cfg = ServerConfig(model_path="m", backend="sim", coverage=True, coverage_include=["*/a$HOME/*"])
    rc = coverage_rc(cfg, Path("/runs/$USER"))
    assert "data_file = /runs/$$USER/.coverage" in rc
    assert "    */a$$HOME/*" in rc


def test_coverage_settings_that_would_break_the_rc_file_or_measure_nothing_are_rejected() -> None:
    with pytest.raises(ValidationError, match="one file glob per item"):
        ServerConfig(model_path="m", coverage=True, coverage_include=["*/a/*,*/b/*"])
    with pytest.raises(ValidationError, match="one file glob per item"):
        ServerConfig(model_path="m", coverage=True, coverage_include=[" "])
    with pytest.raises(ValidationError, match="coverage measures servers we launch"):
        ServerConfig(model_path="m", backend="external", url="http://h:1", coverage=True)

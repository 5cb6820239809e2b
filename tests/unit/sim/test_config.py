"""The simulator's typed config: built once from argv, validated, frozen; the API key never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.servers.argv import server_argv
from sglang_test_framework.sim.__main__ import main
from sglang_test_framework.sim.args import build_parser, parse_config
from sglang_test_framework.sim.config import API_KEY_ENV, SimConfig, flag_of
from sglang_test_framework.sim.server import SimServer

NO_ENV: dict[str, str] = {}


def config(*flags: str, env: dict[str, str] = NO_ENV) -> SimConfig:
    return parse_config(["--model-path", "m", *flags], env)


def error_of(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """The error line of a rejected command line (exit code 2, like argparse and SGLang)."""
    with pytest.raises(SystemExit) as exc:
        config(*flags)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("python -m sglang_test_framework.sim: error: ")
    return lines[-1]


def test_flags_are_sglang_names_and_values_are_typed() -> None:
    cfg = config("--tp-size", "2", "--max-running-requests", "8", "--enable-hicache", "--mem-fraction-static", "0.8")
    assert cfg.tp_size == 2 and cfg.max_running_requests == 8 and cfg.enable_hierarchical_cache
    assert cfg.mem_fraction_static == 0.8 and cfg.resolved_mem_fraction_static == 0.8
    assert config("--model", "x").model_path == "x"
    assert config("--chunked-prefill-size", "-1").resolved_chunked_prefill_size == -1
    assert config().resolved_chunked_prefill_size == 8192 and config().resolved_mem_fraction_static == 0.88
    assert config("--sim-ground-truth-log", "t.jsonl").sim_ground_truth_log == Path("t.jsonl")
    assert config("--port", "31000").worker_id == "127.0.0.1:31000"
    assert config("--served-model-name", "llama").model_name == "llama"


def test_config_is_frozen() -> None:
    cfg = config()
    with pytest.raises(ValidationError):
        cfg.port = 1  # type: ignore[misc]


def test_every_flag_is_a_config_field_and_every_field_a_flag() -> None:
    help_text = build_parser().format_help()
    for name in SimConfig.model_fields:
        assert flag_of(name) in help_text, name
    parsed = vars(build_parser().parse_args(["--model-path", "m"]))
    assert set(parsed) == set(SimConfig.model_fields)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--max-running-requests", "0"), "--max-running-requests 0: must be greater than 0"),
        (("--max-total-tokens", "-5"), "--max-total-tokens -5: must be greater than 0"),
        (("--stream-interval", "0"), "--stream-interval 0: must be greater than or equal to 1"),
        (("--sim-slowdown", "inf"), "--sim-slowdown inf: must be a finite number"),
        (("--sim-jitter-cv", "nan"), "--sim-jitter-cv nan: must be a finite number"),
        (("--mem-fraction-static", "1.5"), "--mem-fraction-static 1.5: must be less than 1"),
        (("--sim-fail-rate", "2"), "--sim-fail-rate 2.0: must be less than or equal to 1"),
        (("--chunked-prefill-size", "0"), "--chunked-prefill-size 0: give a positive token count, or -1"),
        (("--schedule-policy", "dfs-weight"), "--schedule-policy dfs-weight: the simulator implements fcfs and lpm"),
        (("--dp-size", "2"), "--dp-size 2: the simulator runs one data-parallel rank"),
        (("--sim-gpu", "L40S"), "--sim-gpu L40S: use one of H100-SXM"),
        (("--sim-profile", "Llama-9@H100-SXM"), "--sim-profile 'Llama-9@H100-SXM': use MODEL@GPU"),
        (("--sim-fail-status", "200"), "--sim-fail-status 200: must be greater than or equal to 400"),
        (("--port", "0"), "--port 0: must be greater than or equal to 1"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag_and_the_fix(
    capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], expected: str
) -> None:
    assert expected in error_of(capsys, *flags)


def test_several_problems_are_reported_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_of(capsys, "--max-running-requests", "0", "--sim-slowdown", "0")
    assert "--max-running-requests 0" in line and "--sim-slowdown 0.0" in line


def test_a_bad_yaml_profile_names_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("mbux: 1\n")
    assert "--sim-profile: profile" in error_of(capsys, "--sim-profile", str(path))
    path.write_text("model: Llama-9\n")
    assert "model 'Llama-9' is not built in" in error_of(capsys, "--sim-profile", str(path))
    assert "cannot read it" in error_of(capsys, "--sim-profile", str(tmp_path / "missing.yaml"))


def test_unknown_flags_are_an_error_like_sglang(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_of(capsys, "--max-running-requestz", "8")
    assert "unrecognized arguments: --max-running-requestz 8" in line
    assert "--max-running-requests" not in capsys.readouterr().err  # nothing else printed


def test_api_key_from_the_environment_and_the_flag_wins() -> None:
    assert config().api_key is None
    assert config(env={API_KEY_ENV: "from-env"}).api_key_value == "from-env"
    assert config("--api-key", "from-flag", env={API_KEY_ENV: "from-env"}).api_key_value == "from-flag"
    assert config(env={API_KEY_ENV: ""}).api_key is None


def test_api_key_is_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config("--api-key", "s3cret-key")
    assert "s3cret-key" not in repr(cfg) and "s3cret-key" not in str(cfg.model_dump())
    info = SimServer(cfg).server_info()
    assert info["api_key"] == "***"
    assert "s3cret-key" not in str(info)
    assert SimServer(config()).server_info()["api_key"] is None
    # a rejected command line does not echo the key either
    line = error_of(capsys, "--api-key", "s3cret-key", "--max-running-requests", "0")
    assert "s3cret-key" not in line


def test_server_info_reports_resolved_args_and_disaggregation_mode() -> None:
    info = SimServer(config("--max-total-tokens", "5000", "--max-running-requests", "7")).server_info()
    assert info["disaggregation_mode"] == "null"
    assert info["max_total_num_tokens"] == 5000 and info["max_running_requests"] == 7
    assert info["chunked_prefill_size"] == 8192 and info["mem_fraction_static"] == 0.88
    assert info["model_path"] == "m" and info["dp_size"] == 1
    assert not any(key.startswith("sim_") for key in info if key not in ("sim_profile", "sim_worker_id"))


def test_the_launcher_command_line_is_accepted(tmp_path: Path) -> None:
    server = ServerConfig(
        model_path="meta-llama/Meta-Llama-3-8B-Instruct",
        max_running_requests=16,
        max_queued_requests=32,
        max_total_tokens=40_000,
        mem_fraction_static=0.8,
        chunked_prefill_size=-1,
        max_prefill_tokens=4096,
        schedule_policy="lpm",
        schedule_conservativeness=0.9,
        served_model_name="llama",
        context_length=4096,
        random_seed=3,
        log_level="warning",
        enable_torch_compile=True,
        disable_radix_cache=True,
        sim_profile="Llama-3-8B@A100-80G",
        sim_ground_truth_log=tmp_path / "truth.jsonl",
        sim_args=["--sim-jitter-cv", "0"],
    )
    argv = server_argv(server, 31000)
    assert argv[1:3] == ["-m", "sglang_test_framework.sim"]
    cfg = parse_config(argv[3:], NO_ENV)
    assert cfg.port == 31000 and cfg.max_running_requests == 16 and cfg.schedule_policy == "lpm"
    assert cfg.sim_jitter_cv == 0 and cfg.sim_profile == "Llama-3-8B@A100-80G"


def test_the_entry_point_exits_2_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--model-path", "m", "--sim-fail-rate", "1.5"])
    assert exc.value.code == 2
    assert "--sim-fail-rate 1.5: must be less than or equal to 1" in capsys.readouterr().err

"""The API key: field, environment variable or file; never in repr/str/dumps/saved YAML/error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.secrets import API_KEY_ENV, REDACTED
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.config.sweep_config import SweepConfig
from sglang_test_framework.errors import ConfigError

MODEL = "meta-llama/Llama-2-7b-hf"
SECRET = "sk-test-0123456789-secret"


def _key_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "key.txt"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_key_comes_from_the_field_then_the_file_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ServerConfig(model_path=MODEL).api_key is None
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert ServerConfig(model_path=MODEL).api_key == "from-env"
    key_file = _key_file(tmp_path, "  from-file  \nsecond line is ignored\n")
    assert ServerConfig(model_path=MODEL, api_key_file=key_file).api_key == "from-file"
    assert ServerConfig(model_path=MODEL, api_key="from-field").api_key == "from-field"
    assert RouterConfig().api_key == "from-env"
    assert RoutingConfig(model_path=MODEL, api_key_file=key_file).api_key == "from-file"


def test_field_and_file_together_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="api_key and api_key_file: give one of them"):
        NodeConfig.build(model_path=MODEL, api_key="a", api_key_file=_key_file(tmp_path, "b"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("\n\n", "first line of .* is empty"),
        (b"caf\xe9\n", r"key\.txt:1: the API key file is not UTF-8"),
    ],
)
def test_unusable_key_file_names_the_file(tmp_path: Path, content: str | bytes | None, expected: str) -> None:
    path = tmp_path / "key.txt" if content is None else _key_file(tmp_path, content)
    with pytest.raises(ConfigError, match=expected) as info:
        NodeConfig.build(model_path=MODEL, api_key_file=path)
    assert "\n" not in str(info.value)


def test_blank_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="api_key: empty"):
        ServerConfig.build(model_path=MODEL, api_key="  ")


def _configs_with_key(tmp_path: Path) -> list[BaseModel]:
    node = NodeConfig(model_path=MODEL, api_key=SECRET)
    return [
        ServerConfig(model_path=MODEL, api_key=SECRET),
        node,
        node.to_server_config(),
        RouterConfig(api_key=SECRET),
        RoutingConfig(model_path=MODEL, num_gpus=2, api_key=SECRET, router=RouterConfig(api_key=SECRET)),
        SweepConfig(base=node, grid={"max_running_requests": [8]}, output_dir=tmp_path),
    ]


def test_key_never_appears_in_repr_str_or_dumps(tmp_path: Path) -> None:
    for config in _configs_with_key(tmp_path):
        yaml_path = tmp_path / "dump.yaml"
        if isinstance(config, NodeConfig):
            config.to_yaml(yaml_path)
            assert SECRET not in yaml_path.read_text()
        texts = [repr(config), str(config), str(config.model_dump()), json.dumps(config.model_dump(mode="json"))]
        for text in texts:
            assert SECRET not in text, type(config).__name__
        assert REDACTED in json.dumps(config.model_dump(mode="json"))


def test_dumps_show_placeholder_when_set_and_null_when_not() -> None:
    assert ServerConfig(model_path=MODEL, api_key=SECRET).model_dump()["api_key"] == REDACTED
    assert ServerConfig(model_path=MODEL).model_dump(mode="json")["api_key"] is None
    routing = RoutingConfig(model_path=MODEL, api_key=SECRET).model_dump(mode="json")
    assert routing["api_key"] == REDACTED and routing["router"]["api_key"] is None
    assert "api_key='***'" in repr(ServerConfig(model_path=MODEL, api_key=SECRET))


def test_validation_errors_do_not_echo_the_key() -> None:
    with pytest.raises(ValidationError) as info:
        RoutingConfig(model_path=MODEL, num_gpus=3, tp_size=2, api_key=SECRET)
    assert SECRET not in str(info.value)
    with pytest.raises(ValidationError) as info2:
        ServerConfig(model_path=MODEL, api_key=SECRET, backend="external")
    assert SECRET not in str(info2.value)


def test_configs_built_from_a_config_keep_the_real_key(tmp_path: Path) -> None:
    node = NodeConfig(model_path=MODEL, api_key=SECRET)
    assert node.to_server_config().api_key == SECRET
    assert node.with_updates(max_running_requests=4).api_key == SECRET
    sweep = SweepConfig(base=node, grid={"max_running_requests": [8]}, output_dir=tmp_path)
    assert sweep.point_config(sweep.points()[0]).api_key == SECRET
    fleet = RoutingConfig(model_path=MODEL, num_gpus=2, api_key=SECRET)
    assert [w.api_key for w in fleet.worker_server_configs()] == [SECRET, SECRET]


def test_key_from_file_is_read_again_not_copied_as_explicit(tmp_path: Path) -> None:
    node = NodeConfig(model_path=MODEL, api_key_file=_key_file(tmp_path, SECRET))
    assert "api_key" not in node.explicit_values()
    assert node.with_updates(port=0).api_key == SECRET
    assert node.to_server_config().api_key == SECRET


def test_saved_config_reloads_with_the_key_from_env_or_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "saved.yaml"
    NodeConfig(model_path=MODEL, api_key=SECRET).to_yaml(path)
    with pytest.raises(ConfigError, match="placeholder saved configs hold") as info:
        NodeConfig.from_yaml(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    monkeypatch.setenv(API_KEY_ENV, SECRET)
    assert NodeConfig.from_yaml(path).api_key == SECRET

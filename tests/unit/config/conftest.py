"""Config tests run without an API key in the environment unless a test sets one."""

from __future__ import annotations

import pytest

from sglang_test_framework.config.secrets import API_KEY_ENV


@pytest.fixture(autouse=True)
def _no_api_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geowarn.admin.codes import UnitLevel, contains, level_of, parent_of, prefix_of, prefix_range
from geowarn.auth.masking import mask_id_number, mask_name, mask_phone
from geowarn.config import Settings
from geowarn.errors import ConfigError


@pytest.mark.parametrize(
    ("code", "level", "prefix", "parent"),
    [
        ("350000", UnitLevel.PROVINCE, "35", None),
        ("350900", UnitLevel.CITY, "3509", "350000"),
        ("350922", UnitLevel.COUNTY, "350922", "350900"),
        ("350922100", UnitLevel.TOWNSHIP, "350922100", "350922"),
        ("350922100201", UnitLevel.VILLAGE, "350922100201", "350922100"),
    ],
)
def test_code_levels(code: str, level: UnitLevel, prefix: str, parent: str | None) -> None:
    assert level_of(code) == level
    assert prefix_of(code) == prefix
    assert parent_of(code) == parent


@pytest.mark.parametrize("bad", ["", "35", "3509221", "99000", "990000", "abcdef", "35092210a", "0000000"])
def test_bad_codes(bad: str) -> None:
    with pytest.raises(ValueError):
        level_of(bad)


def test_containment_is_by_prefix_not_by_string_accident() -> None:
    assert contains("350900", "350922100201")
    assert contains("350922", "350922")
    assert not contains("350922100", "350922101001")
    assert not contains("350922", "350923100")
    assert not contains("350900", "3509\u06600")  # an Arabic-Indic zero is not a code digit (found by hypothesis)


@given(st.from_regex(r"\A35\d{4}(\d{3}(\d{3})?)?\Z"))
def test_prefix_range_agrees_with_contains(code: str) -> None:
    lo, hi = prefix_range("350900")
    assert (lo <= code < hi) == contains("350900", code)


def test_masks() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("350922199001011234") == "350922********1234"
    assert mask_name("张三丰") == "张**"
    assert mask_phone(None) is None


def test_settings_env_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text("port: 9001\ndatabase_url: ${GW_TEST_DB:-sqlite:///x.db}\n", encoding="utf-8")
    monkeypatch.setenv("GEOWARN_CONFIG", str(cfg))
    assert Settings().port == 9001
    assert Settings().database_url == "sqlite:///x.db"
    monkeypatch.setenv("GW_TEST_DB", "postgresql://u@h/db")
    assert Settings().backend == "postgresql"
    monkeypatch.setenv("GEOWARN_PORT", "9002")  # the environment wins over the file
    assert Settings().port == 9002


def test_production_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOWARN_PASSWORD_PROFILE", raising=False)
    monkeypatch.setenv("GEOWARN_MODE", "production")
    with pytest.raises((ConfigError, ValueError)):
        Settings()
    monkeypatch.setenv("GEOWARN_SECRET_KEY", "x" * 40)
    assert Settings().mode == "production"


def test_fast_password_profile_is_refused_outside_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOWARN_PASSWORD_PROFILE", "fast")
    monkeypatch.setenv("GEOWARN_MODE", "development")
    with pytest.raises((ConfigError, ValueError)):
        Settings()
    monkeypatch.setenv("GEOWARN_MODE", "test")
    assert Settings().password_profile == "fast"

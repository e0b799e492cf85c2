"""[supervision] keys: defaults, the wallboard token as a secret, checks."""
from __future__ import annotations

import pytest

from screenpop.config import ConfigError, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "screenpop.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    s = load_settings(None, env={}).supervision
    assert (s.sl_threshold_seconds, s.longest_wait_alert_seconds, s.service_level_alert, s.wrap_up_max_seconds) == (20, 60, 0.8, 120)
    assert s.wallboard_token == "" and s.timezone == "UTC" and s.threshold_for("support") == 20


def test_wallboard_token_is_a_secret(tmp_path):
    with pytest.raises(ConfigError, match="SCREENPOP_SUPERVISION__WALLBOARD_TOKEN"):
        load_settings(write(tmp_path, '[supervision]\nwallboard_token = "abc"\n'), env={})
    token_file = tmp_path / "wallboard.token"
    token_file.write_text("from-a-file\n", encoding="utf-8")
    s = load_settings(write(tmp_path, f'[supervision]\nwallboard_token_file = "{token_file}"\n'), env={}).supervision
    assert s.wallboard_token == "from-a-file"
    s = load_settings(None, env={"SCREENPOP_SUPERVISION__WALLBOARD_TOKEN": "from-env"}).supervision
    assert s.wallboard_token == "from-env"


def test_per_queue_threshold_and_checks(tmp_path):
    s = load_settings(write(tmp_path, '[supervision]\nqueue_sl_thresholds = ["support=30"]\ntimezone = "Europe/Madrid"\n'), env={}).supervision
    assert s.threshold_for("support") == 30 and s.threshold_for("sales") == 20
    s = load_settings(None, env={"SCREENPOP_SUPERVISION__QUEUE_SL_THRESHOLDS": "sales=15,billing=40"}).supervision
    assert (s.threshold_for("sales"), s.threshold_for("billing")) == (15, 40)
    for bad in ("queue_sl_thresholds = ['support']", "service_level_alert = 80", "timezone = 'Mars/Base'",
                "sl_threshold_seconds = 0"):
        with pytest.raises(ConfigError, match="supervision"):
            load_settings(write(tmp_path, f"[supervision]\n{bad}\n"), env={})

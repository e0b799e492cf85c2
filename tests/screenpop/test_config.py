from __future__ import annotations

import pytest

from screenpop.config import ConfigError, load_settings

SQL_SOURCE = """
[[sources]]
name = "sales"
kind = "sql"
dsn = "sqlite+aiosqlite:///sales.db"
phones_query = "select id, phone from customers"
record_query = "select * from customers where id = :key"
"""


def write(tmp_path, text):
    path = tmp_path / "screenpop.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    settings = load_settings(None, env={})
    assert settings.ami.port == 5038 and settings.bus.redis_url == "" and settings.sources == []


def test_environment_overrides_file_and_coerces_types(tmp_path):
    path = write(tmp_path, "[ami]\nhost = 'pbx1'\nport = 5038\n[lookup]\ndeadline_ms = 100\n" + SQL_SOURCE)
    settings = load_settings(path, env={"SCREENPOP_AMI__PORT": "6000", "SCREENPOP_LOOKUP__DEADLINE_MS": "80", "SCREENPOP_AMI__SECRET": "s3cret", "SCREENPOP_SOURCES__SALES__DEADLINE_MS": "40"})
    assert (settings.ami.host, settings.ami.port, settings.ami.secret) == ("pbx1", 6000, "s3cret")
    assert settings.lookup.deadline_ms == 80
    assert settings.sources[0].deadline_ms == 40


def test_secret_in_the_file_is_refused_with_the_fix(tmp_path):
    path = write(tmp_path, "[ami]\nsecret = 'oops'\n")
    with pytest.raises(ConfigError, match="SCREENPOP_AMI__SECRET"):
        load_settings(path, env={})


def test_secret_file(tmp_path):
    secret = tmp_path / "ami.secret"
    secret.write_text("from-file\n")
    path = write(tmp_path, f"[ami]\nsecret_file = '{secret}'\n")
    assert load_settings(path, env={}).ami.secret == "from-file"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[ami]\nprot = 1\n", "unknown key"),
        ("[ami]\nport = 'x'\n", "ami.port must be int"),
        ("[ami\n", "not valid TOML"),
        ("[agents]\npatterns = ['(unclosed']\n", "not a valid regular expression"),
        ("[agents]\npatterns = ['^SIP/(\\\\d+)']\n", "named group"),
        ("[[sources]]\nname = 'x'\nkind = 'ftp'\n", "kind must be"),
        ("[[sources]]\nname = 'x'\nkind = 'sql'\n", "needs dsn"),
        (SQL_SOURCE + SQL_SOURCE, "two sources"),
        ("[pop]\ntiming = 'never'\n", "pop.timing must be"),
    ],
)
def test_broken_config_names_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("/nonexistent.toml", env={})


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "config"
    demo = load_settings(root / "demo.toml", env={})
    assert demo.bus.redis_url == "" and demo.storage.dsn.startswith("sqlite")
    production = load_settings(
        root / "production.example.toml",
        env={"SCREENPOP_AMI__SECRET": "x", "SCREENPOP_SOURCES__BILLING__TOKEN": "t"},
    )
    assert production.bus.redis_url.startswith("redis://")
    assert [s.name for s in production.sources] == ["sales", "billing"]
    assert production.auth.session_cache_seconds == 5 and production.auth.socket_recheck_seconds == 30


def test_pop_timing_per_queue(tmp_path):
    settings = load_settings(write(tmp_path, "[pop]\non_answer_queues = ['vip']\n"),
                             env={"SCREENPOP_POP__TIMING": "answer"})
    assert settings.pop.timing == "answer" and settings.pop.on_answer_queues == ["vip"]


def test_session_cache_seconds(tmp_path):
    assert load_settings(None, env={}).auth.session_cache_seconds == 5
    assert load_settings(write(tmp_path, "[auth]\nsession_cache_seconds = 0\n"), env={}).auth.session_cache_seconds == 0  # no cache
    assert load_settings(None, env={"SCREENPOP_AUTH__SESSION_CACHE_SECONDS": "2.5"}).auth.session_cache_seconds == 2.5
    for bad in ("-1", "61"):
        with pytest.raises(ConfigError, match="auth.session_cache_seconds must be between 0 .* and 60"):
            load_settings(None, env={"SCREENPOP_AUTH__SESSION_CACHE_SECONDS": bad})

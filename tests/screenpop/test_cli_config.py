"""Which configuration and database a command uses, secrets a config file
must not hold, and a busy web port: what a new user meets first."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from screenpop.config import ConfigError, load_settings
from screenpop.config_paths import CONFIG_ENV, DEMO_CONFIG, choose_config

ROOT = Path(__file__).resolve().parents[2]
SCREENPOP = ROOT / ".venv" / "bin" / "screenpop"


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SCREENPOP_")}, **extra}


# ------------------------------------------------------------ which config


def test_without_config_every_command_uses_the_demos_files_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: relative paths must not follow the working directory
    choice = choose_config(None, env={})
    assert choice.path == DEMO_CONFIG and choice.origin == "default"
    settings = choice.load(env={})
    demo = ROOT / "var" / "demo"
    assert settings.storage.dsn == f"sqlite+aiosqlite:///{demo}/interactions.sqlite3"
    assert [s.dsn for s in settings.sources] == [f"sqlite+aiosqlite:///{demo}/{n}.sqlite3" for n in ("sales", "billing", "support")]
    assert settings.interactions.spill_path == str(ROOT / "var" / "interactions-spill.jsonl")
    # `screenpop demo` runs with the very same files
    from screenpop.demo import demo_settings

    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert demo_settings(None).storage.dsn == settings.storage.dsn
    assert choice.describe(settings) == (f"config {DEMO_CONFIG} (the default: no --config or $SCREENPOP_CONFIG), "
                                         f"database {demo}/interactions.sqlite3 (SQLite)")


def test_config_flag_then_environment_then_demo(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[storage]\ndsn = "sqlite+aiosqlite:///rel/log.sqlite3"\n')
    assert choose_config(str(mine), env={CONFIG_ENV: "/elsewhere.toml"}).path == mine
    chosen = choose_config(None, env={CONFIG_ENV: str(mine)})
    assert (chosen.path, chosen.origin) == (mine, CONFIG_ENV)
    # a config of one's own keeps its relative paths relative to the working directory, as before
    assert chosen.load(env={}).storage.dsn == "sqlite+aiosqlite:///rel/log.sqlite3"


def test_every_command_says_which_config_and_database_on_stderr_and_json_stays_clean(tmp_path):
    config = tmp_path / "screenpop.toml"
    config.write_text(f'[storage]\ndsn = "sqlite+aiosqlite:///{tmp_path}/log.sqlite3"\n')
    for argv in (["users", "list", "--json"], ["tokens", "list", "--json"], ["audit", "--json"]):
        done = subprocess.run([str(SCREENPOP), *argv], env=_env(SCREENPOP_CONFIG=str(config)), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[0] == f"screenpop: config {config} ($SCREENPOP_CONFIG), database {tmp_path}/log.sqlite3 (SQLite)"
        for line in done.stdout.splitlines():  # nothing but JSON on stdout
            json.loads(line)
    helped = subprocess.run([str(SCREENPOP), "users", "list", "--help"], env=_env(), capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stderr == ""


# ----------------------------------------------------------------- secrets


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "screenpop.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "env_name"),
    [
        ('[storage]\ndsn = "postgresql+asyncpg://screenpop:hunter2@db/screenpop"\n', "storage.dsn", "SCREENPOP_STORAGE__DSN"),
        ('[[sources]]\nname = "crm"\nkind = "sql"\ndsn = "postgresql://u:hunter2@crm/crm"\nphones_query = "q"\nrecord_query = "q"\n',
         "sources[0].dsn", "SCREENPOP_SOURCES__CRM__DSN"),
        ('[bus]\nredis_url = "redis://:hunter2@redis:6379/0"\n', "bus.redis_url", "SCREENPOP_BUS__REDIS_URL"),
    ],
)
def test_a_password_inside_a_dsn_is_refused_naming_the_variable_that_works(tmp_path, text, key, env_name):
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, text), env={})
    message = str(refused.value)
    assert key in message and env_name in message and "hunter2" not in message
    # and the variable named does the job, with the password left out of the file
    plain = text.replace(":hunter2@", "@")
    url = text.split('"')[1] if key != "sources[0].dsn" else "postgresql://u:hunter2@crm/crm"
    settings = load_settings(_write(tmp_path, plain), env={env_name: url})
    value = {"storage.dsn": lambda: settings.storage.dsn, "sources[0].dsn": lambda: settings.sources[0].dsn,
             "bus.redis_url": lambda: settings.bus.redis_url}[key]()
    assert value == url


def test_a_dsn_without_a_password_is_fine(tmp_path):
    settings = load_settings(_write(tmp_path, '[storage]\ndsn = "postgresql+asyncpg://screenpop@db/screenpop"\n'), env={})
    assert settings.storage.dsn.endswith("@db/screenpop")


def test_the_refusal_of_a_source_token_names_the_variable_that_works(tmp_path):
    text = '[[sources]]\nname = "Billing"\nkind = "http"\nurl = "https://billing/{key}"\n'
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, text + 'token = "t0ken"\n'), env={})
    assert "SCREENPOP_SOURCES__BILLING__TOKEN" in str(refused.value) and "t0ken" not in str(refused.value)
    settings = load_settings(_write(tmp_path, text), env={"SCREENPOP_SOURCES__BILLING__TOKEN": "t0ken"})
    assert settings.sources[0].token == "t0ken"


# --------------------------------------------------------------- busy port


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_busy_web_port_is_one_line_and_exit_2(command, taken_port, tmp_path):
    demo = DEMO_CONFIG.read_text(encoding="utf-8").replace("sqlite+aiosqlite:///var/", f"sqlite+aiosqlite:///{tmp_path}/")
    config = _write(tmp_path, demo)
    extra = ["--customers", "10", "--duration", "1"] if command == "demo" else []
    done = subprocess.run([str(SCREENPOP), command, "--config", str(config), "--port", str(taken_port), *extra],
                          env=_env(SCREENPOP_INTERACTIONS__SPILL_PATH=str(tmp_path / "spill.jsonl")), cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (f"screenpop: port {taken_port} on 127.0.0.1 is already in use; "
                                            "pick another with --port or [web] port")

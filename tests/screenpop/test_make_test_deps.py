"""`make test` never installs system packages unless asked.

A missing chromium fails the run with what is missing and the one command
that installs it; ``INSTALL_DEPS=1`` (what CI's ``.ci/run`` passes) lets it
install.  ``apt-get`` here is a stand-in script on PATH that records its
arguments: really installing packages would change this machine and needs
the network, which a test has neither the right nor the means to use.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _fake_apt(tmp_path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    apt = bin_dir / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 0\n')
    apt.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("INSTALL_DEPS", None)
    # Under `make test INSTALL_DEPS=1` (CI) the variable also reaches a child
    # make through MAKEFLAGS: the test's own make must not inherit it.
    for name in ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL"):
        env.pop(name, None)
    return env, calls


def test_make_test_says_what_is_missing_and_how_to_install_it_without_installing(tmp_path):
    env, calls = _fake_apt(tmp_path)
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "services"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    line = [line for line in done.stderr.splitlines() if line.startswith("chromium:")]
    assert line == [f"chromium: {tmp_path / 'no-chromium'} is missing; the browser tests (tests/browser) drive it. "
                    "Install it with: " + ("make test INSTALL_DEPS=1" if os.geteuid() == 0 else "sudo apt-get install chromium")]
    assert not calls.exists()  # apt-get never ran


def test_install_deps_1_installs_as_ci_asks(tmp_path):
    env, calls = _fake_apt(tmp_path)
    done = subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], env={**env, "INSTALL_DEPS": "1"},
                          capture_output=True, text=True, timeout=60)
    if os.geteuid() == 0:
        assert "install -y -qq chromium" in calls.read_text()
        # the stand-in installed nothing, so it still fails, and says so
        assert done.returncode == 1 and "apt-get install chromium failed" in done.stderr
    else:
        assert done.returncode == 1 and not calls.exists()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make test")]
    assert commands and all("INSTALL_DEPS=1" in line.split() for line in commands)


def test_a_present_chromium_is_left_alone(tmp_path):
    env, calls = _fake_apt(tmp_path)
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], env={**env, "CHROMIUM": str(chromium), "INSTALL_DEPS": "1"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "" and not calls.exists()

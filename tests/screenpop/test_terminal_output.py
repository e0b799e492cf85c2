"""A caller's name reaches the terminal of `replay` and `demo --timeline`
escaped, never raw: whoever places a call sets its caller ID name, and a
name carrying escape sequences must not retitle, clear or forge lines of an
operator's terminal."""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENPOP = ROOT / ".venv" / "bin" / "screenpop"
# OSC retitle + BEL, a C1 CSI (clear screen), a right-to-left override, DEL
HOSTILE = "\x1b]0;pwned\x07 Eve \u009b2J\u202egnp.exe\x7f"
RAW = ("\x1b", "\x07", "\u009b", "\u202e", "\x7f")


def _hostile_capture(tmp_path) -> Path:
    capture = (ROOT / "tests" / "fixtures" / "sales_no_answer_then_next.ami").read_bytes()
    path = tmp_path / "hostile.ami"
    path.write_bytes(capture.replace(b"Bob Smith", HOSTILE.encode()))
    return path


@pytest.mark.parametrize("as_json", [False, True])
def test_replay_prints_a_hostile_caller_name_escaped(tmp_path, as_json):
    done = subprocess.run([str(SCREENPOP), "replay", str(_hostile_capture(tmp_path)), *(["--json"] if as_json else [])],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "pwned" in out and not any(ch in out for ch in RAW)
    if as_json:  # the same value for a parser
        names = {json.loads(line).get("caller_name") for line in out.splitlines()}
        assert HOSTILE in names
    else:
        assert "\\x1b]0;pwned\\x07 Eve \\x9b2J\\u202egnp.exe\\x7f" in out


async def test_demo_timeline_prints_a_hostile_caller_name_escaped(tmp_path, monkeypatch):
    """The real demo (simulator, AMI link, tracker, service) with one caller
    whose name is hostile, its timeline written to a buffer."""
    import screenpop.demo as demo
    from screenpop.config import load_settings

    config = tmp_path / "demo.toml"
    config.write_text((ROOT / "config" / "demo.toml").read_text(encoding="utf-8")
                      .replace("sqlite+aiosqlite:///var/", f"sqlite+aiosqlite:///{tmp_path}/"), encoding="utf-8")
    settings = load_settings(config, env={"SCREENPOP_INTERACTIONS__SPILL_PATH": str(tmp_path / "spill.jsonl")})
    monkeypatch.setattr(demo, "DEMO_CALLERS", [("+34912345678", HOSTILE)])  # the demo's callers: data, not a mock
    for as_json in (False, True):
        out = io.StringIO()
        assert await demo.run_demo(settings, rate=5, duration=3, speed=20, timeline=True, as_json=as_json,
                                   port=0, customers=10, out=out) == 0
        text = out.getvalue()
        assert "pwned" in text, text[:2000]
        assert not any(ch in text for ch in RAW)
        if as_json:
            assert HOSTILE in {json.loads(line).get("caller_name") for line in text.splitlines()}

"""`screenpop replay` as a user runs it: the installed console script."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from telephony.events import event_from_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCREENPOP = Path(sys.executable).with_name("screenpop")


def run(*args, stdin: bytes | None = None):
    return subprocess.run([str(SCREENPOP), *args], input=stdin, capture_output=True, timeout=60)


def test_replay_json_prints_one_valid_call_event_per_line():
    result = run("replay", str(FIXTURES / "sales_no_answer_then_next.ami"), "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    events = [event_from_dict(json.loads(line)) for line in lines]
    assert [e.type for e in events] == ["call.queued", "call.ringing", "call.missed", "call.ringing", "call.answered", "call.ended"]
    assert json.loads(lines[0]) == {
        "type": "call.queued",
        "call_id": "1795383127.6",
        "ts": "2026-11-22T21:32:08.483834Z",
        "queue": "sales",
        "caller_number": "+14155550100",
        "caller_name": "Bob Smith",
        "position": 1,
        "presentation": "allowed",
    }
    assert json.loads(lines[2])["reason"] == "no-answer"  # 1003's ring timed out (DialEnd NOANSWER)


def test_replay_reads_standard_input_and_prints_a_timeline():
    result = run("replay", "-", stdin=(FIXTURES / "billing_abandoned.ami").read_bytes())
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "abandoned" in text and "Carla Ruiz" in text
    assert "0 call(s) still in progress" in result.stderr.decode()


def test_replay_of_a_missing_file_is_one_clear_line():
    result = run("replay", "/nonexistent/capture.ami")
    assert result.returncode == 2
    assert result.stderr.decode().strip() == "screenpop: capture /nonexistent/capture.ami does not exist"


def test_replay_of_damaged_input_warns_and_keeps_the_good_events():
    data = (FIXTURES / "direct_call.ami").read_bytes()
    cut = data.index(b"Event: DialBegin")
    damaged = data[:cut] + b"\xff\xfe garbage line\r\nno colon here\r\n\r\n" + data[cut:] + b"Event: Trunc"
    result = run("replay", "-", "--json", stdin=damaged)
    assert result.returncode == 0
    types = [json.loads(line)["type"] for line in result.stdout.decode().splitlines()]
    assert types == ["call.ringing", "call.answered", "call.ended"]
    assert "damaged AMI message(s) or line(s) skipped" in result.stderr.decode()


def test_broken_config_is_reported_not_raised(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[ami]\nport = 'many'\n")
    result = run("--config", str(config), "replay", str(FIXTURES / "direct_call.ami"))
    assert result.returncode == 2
    assert b"ami.port must be int" in result.stderr
    assert b"Traceback" not in result.stderr

"""Every command line the README and docs/ show runs as written.

The lines are read from the documents themselves (code spans and code
blocks that begin with ``screenpop``, ``.venv/bin/screenpop``,
``/opt/screenpop/bin/screenpop`` or ``make``), so a changed flag in the CLI
or a changed line in a document fails here instead of on a new user's first
try.  Each runs as a real process, in a directory of its own, against a
configuration of its own (``$SCREENPOP_CONFIG``: the demo's config with its
business databases seeded in a temporary directory, its own SQLite log).
Placeholders (``FILE``, ``NAME``, ``N``, ``…``) are filled with real values;
a command that would start a server or run until stopped (``serve``,
``demo``, ``watch``) gets ``--help``, which still parses every option
written before it, and so does a command only named in prose without the
arguments it requires (`screenpop tokens create`); ``make test`` is a dry run (``make -n``): the suite does
not run itself.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENPOP = ROOT / ".venv" / "bin" / "screenpop"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAM = r"(?:\.venv/bin/|/opt/screenpop/bin/)?screenpop"
COMMAND = re.compile(rf"^(?:\$\s+|ExecStart=)?((?:{PROGRAM}|make)\s+(?:--?[a-z]|[a-z])[^`#]*?)\s*(?:#.*)?$")
RUN_FOREVER = {"serve", "demo", "watch"}
PLACEHOLDERS = {"FILE": "{config}", "CAPTURE.ami": str(ROOT / "tests" / "fixtures" / "blind_transfer.ami"),
                "NUMBER": "+34912345678", "NAME": "billing-erp", "N": "20", "DATE": "2026-01-01", "F": "{password_file}"}
AFTER_FLAG = {"--actor": "admin", "--action": "card.viewed"}


def documented_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every command line shown, in the documents' order."""
    found = []
    for path in DOCUMENTS:
        in_block = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_block = not in_block
                continue
            candidates = [line.strip()] if in_block else _spans(line)
            for text in candidates:
                match = COMMAND.match(text)
                if match:
                    found.append((f"{path.relative_to(ROOT)}:{number}", match[1].strip()))
    return found


def _spans(line: str) -> list[str]:
    """A line's code spans; a span right after a command, separated by " / ",
    continues it: `screenpop tokens create NAME` / `list` is also
    ``screenpop tokens list``, `screenpop index rebuild` / `index stats` also
    ``screenpop index stats``."""
    spans = []
    for group in re.finditer(r"`[^`]+`(?:\s*/\s*`[^`]+`)*", line):
        first, *rest = re.findall(r"`([^`]+)`", group[0])
        spans.append(first)
        words = first.split()
        if len(words) >= 2 and re.fullmatch(PROGRAM, words[0]):
            for more in rest:
                spans.append(" ".join([words[0], *(([] if more.split()[0] == words[1] else [words[1]])), more]))
    return spans


def variants(command: str) -> list[list[str]]:
    """The argv(s) to run for a documented line: ``[--json]`` both without and with."""
    optional = re.findall(r"\[([^\]]+)\]", command)
    bare = re.sub(r"\s*\[[^\]]+\]", "", command)
    full = re.sub(r"\[([^\]]+)\]", r"\1", command)
    return [shlex.split(bare)] + ([shlex.split(full)] if optional else [])


def test_the_documents_show_the_commands_this_test_knows():
    commands = {c for _, c in documented_commands()}
    # A sample the extraction must find, so a broken pattern cannot pass by finding nothing.
    for expected in ("make demo", "make test", "screenpop serve --config FILE", "screenpop db upgrade",
                     ".venv/bin/screenpop replay tests/fixtures/blind_transfer.ami",
                     "screenpop tokens revoke NAME", "screenpop audit purge --before 2026-01-01",
                     "/opt/screenpop/bin/screenpop --config /etc/screenpop/screenpop.toml serve"):
        assert expected in commands, sorted(commands)


@pytest.fixture(scope="module")
def business_dbs(tmp_path_factory) -> Path:
    """The demo's three business databases, small, seeded once by the CLI."""
    home = tmp_path_factory.mktemp("business")
    done = subprocess.run([str(SCREENPOP), "seed", "--customers", "30", "--quiet"], cwd=home,
                          capture_output=True, text=True, timeout=120, env=_env({}))
    assert done.returncode == 0, done.stderr
    return home / "var" / "demo"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENPOP_")}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _argv(words: list[str], config: Path, password_file: Path) -> tuple[list[str], list[str]]:
    """The argv to run, and the options its --help must show (for a command named in prose)."""
    program, *rest = words
    if program == "make":
        target = rest[0]
        if target == "demo":  # the demo runs until stopped: its options as written, then --help
            given = next((w.split("=", 1)[1] for w in rest if w.startswith("DEMO_ARGS=")), "")
            # -o: the venv is the one these tests run in, never reinstalled from here
            return ["make", "-C", str(ROOT), "-o", ".venv/.installed", "demo", f"DEMO_ARGS={given} --help".replace("= ", "=")], []
        return ["make", "-C", str(ROOT), "-n", *rest], []
    args = []
    for i, word in enumerate(rest):
        if word in PLACEHOLDERS:
            word = PLACEHOLDERS[word].format(config=config, password_file=password_file)
        elif word == "…" and i and rest[i - 1] in AFTER_FLAG:
            word = AFTER_FLAG[rest[i - 1]]
        elif word.endswith(".toml"):
            word = str(config)  # /etc/screenpop/screenpop.toml, production.toml: this test's config
        args.append(word)
    subcommands = [w for w in args if not w.startswith("-") and w != str(config)]
    if _a_mention(args):  # its help, which must know every option it names
        return [str(SCREENPOP), *(w for w in args if not w.startswith("-")), "--help"], [w for w in args if w.startswith("--")]
    if subcommands and subcommands[0] in RUN_FOREVER:
        args.append("--help")
    return [str(ROOT / program) if program.startswith(".venv/") else str(SCREENPOP), *args], []


def _a_mention(args: list[str]) -> bool:
    """A command named in prose without the arguments it requires
    (`screenpop users`, `screenpop tokens create`, `users add --role`): not
    a line to type, so its --help is what must work (a wrong flag or value
    still fails)."""
    import contextlib
    import io

    from screenpop.cli import build_parser

    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            build_parser().parse_args(args)
        except SystemExit:
            # missing what it needs (`tokens create`, `users add --role`), not a wrong word
            return "required" in err.getvalue() or "expected one argument" in err.getvalue()
    return False


def _prepare(argv: list[str], config: Path, password_file: Path, env: dict[str, str], cwd: Path) -> None:
    """What a command needs to exist first: the token it revokes, the user it changes."""
    words = argv[1:]
    if words[:2] == ["tokens", "revoke"]:
        _ok([str(SCREENPOP), "tokens", "create", words[2], "--scope", "billing"], env, cwd)
    if words[:1] == ["users"] and words[1:2] and words[1] in ("disable", "enable", "passwd"):
        _ok([str(SCREENPOP), "users", "add", words[2], "--role", "admin", "--password-file", str(password_file)], env, cwd)


def _ok(argv, env, cwd, stdin="") -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    assert "unrecognized arguments" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    return done


def _distinct() -> list[tuple[str, tuple[str, ...]]]:
    """Each distinct command once, named by where it is first shown."""
    cases: dict[tuple[str, ...], str] = {}
    for where, command in documented_commands():
        for argv in variants(command):
            cases.setdefault(tuple(argv), where)
    return [(where, argv) for argv, where in cases.items()]


CASES = _distinct()


@pytest.mark.parametrize(("where", "words"), CASES, ids=[f"{w} {' '.join(a)}" for w, a in CASES])
def test_a_documented_command_runs_as_written(where, words, business_dbs, tmp_path):
    config = tmp_path / "screenpop.toml"
    demo = (ROOT / "config" / "demo.toml").read_text(encoding="utf-8")
    business = tmp_path / "business" if "seed" in words else business_dbs  # seed fills its own
    business.mkdir(exist_ok=True)
    config.write_text(demo.replace("sqlite+aiosqlite:///var/demo/interactions.sqlite3",
                                   f"sqlite+aiosqlite:///{tmp_path}/interactions.sqlite3")
                          .replace("sqlite+aiosqlite:///var/demo/", f"sqlite+aiosqlite:///{business}/"),
                      encoding="utf-8")
    password_file = tmp_path / "password"
    password_file.write_text("a long enough passphrase 7\n", encoding="utf-8")
    env = _env({"SCREENPOP_CONFIG": str(config)})
    argv, must_know = _argv(list(words), config, password_file)
    # `.venv/bin/screenpop …` is written to be typed in the checkout; the others anywhere
    cwd = ROOT if words[0].startswith(".venv/") else tmp_path
    _prepare(argv, config, password_file, env, cwd)
    done = _ok(argv, env, cwd, stdin="a long enough passphrase 7\n")
    for option in must_know:
        assert option in done.stdout, (option, done.stdout)
    if argv[0] != "make" and "--help" not in argv:
        # every command says which configuration (and database) it used
        assert f"config {config} ($SCREENPOP_CONFIG)" in done.stderr, done.stderr
    written = argv[1:argv.index("--help")] if "--help" in argv else []
    if argv[0] != "make" and written and not _a_mention(written):
        # --help answers before argparse looks at the rest: the line as written must parse too
        _parses(written)


def _parses(args: list[str]) -> None:
    import contextlib
    import io

    from screenpop.cli import build_parser

    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"screenpop {' '.join(args)}: {err.getvalue()}")


def test_a_sub_command_accepts_config_before_or_after_it(tmp_path):
    config = tmp_path / "screenpop.toml"
    config.write_text(f'[storage]\ndsn = "sqlite+aiosqlite:///{tmp_path}/log.sqlite3"\n', encoding="utf-8")
    for argv in (["--config", str(config), "users", "list"], ["users", "--config", str(config), "list"],
                 ["users", "list", "--config", str(config)], ["tokens", "list", "--config", str(config)],
                 ["audit", "--config", str(config)], ["db", "upgrade", "--config", str(config)],
                 ["replay", str(ROOT / "tests" / "fixtures" / "blind_transfer.ami"), "--config", str(config)]):
        done = _ok([str(SCREENPOP), *argv], _env({}), tmp_path)
        assert f"config {config} (--config)" in done.stderr, (argv, done.stderr)

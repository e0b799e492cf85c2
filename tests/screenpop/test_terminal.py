"""screenpop.terminal.printable: the one rule for outside text on a terminal."""
from hypothesis import given, strategies as st

from screenpop.terminal import printable


def test_escape_sequences_and_overrides_are_shown_not_sent():
    hostile = "\x1b]0;pwned\x07\x1b[2J\u202eevil\r\nnext\u2028line\x00"
    shown = printable(hostile)
    assert shown == r"\x1b]0;pwned\x07\x1b[2J\u202eevil\r\nnext\u2028line\x00"
    assert "pwned" in shown and "evil" in shown


def test_ordinary_names_pass_unchanged():
    for name in ("José Ñúñez", "O'Brien; DROP TABLE x", "李小龙", "Ana 🙂 <b>"):
        assert printable(name) == name


@given(st.text())
def test_any_text_becomes_one_printable_piece(text):
    assert printable(text).isprintable()


@given(st.recursive(st.none() | st.text() | st.integers(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10))
def test_json_for_a_terminal_is_the_same_json_and_nothing_raw(value):
    import json

    from screenpop.terminal import json_printable

    for indent in (None, 2):
        text = json_printable(json.dumps(value, ensure_ascii=False, indent=indent))
        assert json.loads(text) == value
        assert all(line.isprintable() for line in text.split("\n"))

"""The bounded YAML and JSON readers (cotdistill/safe_load.py): exact values where the text is
fine, one sentence (ParseError, with the line where known) where it breaks a limit."""

import pytest

from cotdistill.safe_load import (ParseError, decode_text, json_depth, load_json, load_yaml,
                                  load_yaml_value, read_text)

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
"""The billion laughs: 9 levels of 9 aliases, 9^9 (387 million) strings from 300 bytes."""


def test_plain_yaml_reads_as_pyyaml_does():
    text = ("train: {lr: 3e-4, steps: 1_000, clip: .5}\nplacement: after\nseed: 0x10\nname: null\n"
            "flag: yes\nitems: [1, two, 3.0]\n")
    assert load_yaml(text) == {"train": {"lr": "3e-4", "steps": 1000, "clip": 0.5},
                               "placement": "after", "seed": 16, "name": None, "flag": True,
                               "items": [1, "two", 3.0]}
    assert load_yaml("") is None and load_yaml_value("  ") is None
    assert load_yaml_value("[1, 2]") == [1, 2]


def test_merge_keys_and_shared_aliases_still_work():
    text = "base: &b {k: 1, m: 2}\nuse: {<<: *b, k: 3}\ntwice: [*b, *b]\n"
    assert load_yaml(text) == {"base": {"k": 1, "m": 2}, "use": {"k": 3, "m": 2},
                               "twice": [{"k": 1, "m": 2}, {"k": 1, "m": 2}]}


def test_a_timestamp_stays_the_text_it_was_written_as():
    assert load_yaml("when: 2024-01-31\nat: 2024-01-31 10:00:00\n") == {
        "when": "2024-01-31", "at": "2024-01-31 10:00:00"}


@pytest.mark.parametrize("text,message,line", [
    (LAUGHS, "aliases expand to more than 100,000 values (an alias bomb?)", 6),   # 9^6 > 100,000
    ("&a [*a]", "an alias refers to its own anchor (a structure that contains itself)", 1),
    ("x: 1\ny: &b {k: *b}", "an alias refers to its own anchor", 2),
    ("[" * 200_000, "nested deeper than 64 levels", 1),
    ("a: 1\nb: 2\na: 3\n", "the key 'a' is written twice in one mapping (lines 1 and 3); keep one", 3),
    ("{a: 1, a: 2}", "the key 'a' is written twice in one mapping (lines 1 and 1)", 1),
    ("x: !!set {a}", "the YAML tag tag:yaml.org,2002:set is not allowed here", 1),
    ("x: !!binary aGk=", "the YAML tag tag:yaml.org,2002:binary is not allowed here", 1),
    ("x: !!python/object/apply:os.system [ls]", "tag:yaml.org,2002:python/object/apply:os.system is not "
                                                "allowed", 1),
    ("x: !custom 1", "the YAML tag !custom is not allowed here", 1),
    ("a: [1\n", "not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)", 2),
])
def test_yaml_limits_give_one_sentence_with_the_line(text, message, line):
    with pytest.raises(ParseError) as e:
        load_yaml(text)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert e.value.line == line


def test_yaml_size_nodes_and_depth_limits_are_arguments():
    with pytest.raises(ParseError, match="^larger than 1 KiB$"):
        load_yaml("x: " + "a" * 1024, max_bytes=1024)
    with pytest.raises(ParseError, match="aliases expand to more than 5 values"):
        load_yaml("a: &a [1, 2]\nb: [*a, *a]", max_nodes=5)
    with pytest.raises(ParseError, match="nested deeper than 2 levels"):
        load_yaml("a: {b: {c: 1}}", max_depth=2)
    assert load_yaml("a: {b: 1}", max_depth=2) == {"a": {"b": 1}}


@pytest.mark.parametrize("text,message", [
    ("x: \x00", "not valid YAML: unacceptable character #x0000"),
    ("x: " + "1" * 5000, "not valid YAML: Exceeds the limit (4300 digits)"),
])
def test_yaml_that_pyyaml_refuses_outside_its_own_errors(text, message):
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_yaml(text)


@pytest.mark.parametrize("text,depth", [
    ('{"a": [1, {"b": [2]}]}', 4), ("5", 0), ('"[[["', 0), ('["[", ["]"]]', 2),
    ('{"a": "x\\\\"}', 1), ('{"a": "\\\\\\"[[["}', 1), ('[[["\\n]"]]]', 3), ("[]", 1),
])
def test_json_depth_skips_brackets_inside_strings(text, depth):
    assert json_depth(text) == depth
    assert json_depth(text.encode()) == depth


def test_json_reads_as_json_does_and_refuses_what_it_should():
    assert load_json(b'\xef\xbb\xbf{"a": [1, 2.5, null, "x"]}') == {"a": [1, 2.5, None, "x"]}
    with pytest.raises(ParseError, match="^nested 200,000 levels deep, more than 64$"):
        load_json("[" * 200_000)
    with pytest.raises(ParseError, match="^the key 'q' is written twice in one object; keep one$"):
        load_json('[{"q": 1}, {"r": {"q": 1, "q": 2}}]')
    with pytest.raises(ParseError, match=r"^not valid JSON \(Expecting value at line 2, column 1\)$") as e:
        load_json("[1,\n")
    assert e.value.line == 2
    with pytest.raises(ParseError, match="^larger than 10 bytes$"):
        load_json(b'"0123456789"', max_bytes=10)
    with pytest.raises(ParseError, match=r"^not UTF-8 \(byte 0xff at offset 1\)$"):
        load_json(b'"\xff"')
    with pytest.raises(ParseError, match="Exceeds the limit"):
        load_json("1" * 5000)


def test_decode_and_read_text_name_the_problem(tmp_path):
    assert decode_text(b"\xef\xbb\xbfseed: 1\n") == "seed: 1\n"
    with pytest.raises(ParseError, match="^the file is UTF-16, not UTF-8; re-save it as UTF-8$"):
        decode_text("seed: 1\n".encode("utf-16"))
    with pytest.raises(ParseError, match="^not UTF-8: byte 0xe9 on line 2; re-save the file as UTF-8$"):
        decode_text(b"a: 1\nb: caf\xe9\n")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2049)
    with pytest.raises(ParseError, match="^larger than 2 KiB$"):
        read_text(big, max_bytes=2048)

"""Few-shot CoT prompts: rendering per kind, rationalization, user templates, and parsing the
teacher's answer out of well-formed, sloppy and malformed replies."""

import pytest

from cotdistill.examples import YES_NO, Example
from cotdistill.teachers import Decoding, make_prompt
from cotdistill.teachers.local import cut_at_stop

SKY = Example(id="s", question="What colour is the sky?", choices=("red", "blue", "green"),
              label="b")
WHALE = Example(id="w", question="Is a whale a fish?", choices=YES_NO, label="no", kind="yes_no")
SUM = Example(id="n", question="What is 40 + 2?", label="42", kind="numeric")


def test_render_each_kind_ends_with_the_question():
    text = make_prompt("multiple_choice").render(SKY)
    assert text.endswith("Q: What colour is the sky?\nAnswer Choices:\n(a) red\n(b) blue\n"
                         "(c) green\nA:")
    assert text.count("\nA: ") == 2                            # two worked examples
    assert make_prompt("yes_no").render(WHALE).endswith("Q: Is a whale a fish?\nA:")
    assert make_prompt("numeric").render(SUM).endswith("Q: What is 40 + 2?\nA:")


def test_rationalization_tells_the_teacher_the_gold_answer():
    text = make_prompt("multiple_choice", rationalize=True).render(SKY)
    assert text.endswith("(c) green\nHint: the correct answer is (b).\nA:")
    assert "Hint: the correct answer is 42." in make_prompt("numeric", rationalize=True).render(SUM)
    assert "correct answer" not in make_prompt("numeric").render(SUM)


def test_user_template_string_and_file(tmp_path):
    prompt = make_prompt("yes_no", template="Question: {question}\n{gold_hint}Reasoning:")
    assert prompt.render(WHALE) == "Question: Is a whale a fish?\nReasoning:"
    file = tmp_path / "p.txt"
    file.write_text("{{literal}} {question} -> {gold}", encoding="utf-8")
    prompt = make_prompt("numeric", template_file=file, rationalize=True)
    assert prompt.render(SUM) == "{literal} What is 40 + 2? -> 42" and prompt.name == "p.txt"


@pytest.mark.parametrize("kind, template, rationalize, message", [
    ("multiple_choice", "Q: {question}\nA:", False, r"lacks the field \{choices\}"),
    ("yes_no", "Q: {question} {answer}", False, r"unknown field \{answer\}"),
    ("yes_no", "Q: {question", False, "not a valid format string"),
    ("yes_no", "Q: {question}", True, "uses neither"),
    ("yes_no", "Q: {question} {gold}", False, "rationalize is off"),
])
def test_bad_templates_are_refused_with_the_reason(kind, template, rationalize, message):
    with pytest.raises(ValueError, match=message):
        make_prompt(kind, template=template, rationalize=rationalize)


@pytest.mark.parametrize("reply, rationale, label", [
    (" Blue light scatters. So the answer is (b).", "Blue light scatters.", "b"),
    (" Blue light. So the answer is: (B) blue\n\nQ: next question", "Blue light.", "b"),
    (" Hmm. so the answer is b.", "Hmm.", "b"),
    (" It is blue. So the answer is blue.", "It is blue.", "b"),
    (" So the answer is (b).", None, "b"),
    (" It is either. So the answer is (a) or (c).", "It is either.", None),
    (" So the answer is a colour.", None, None),                     # not the letter a
    (" So the answer is (d).", None, None),                          # no choice d
    (" I do not know.", None, None),
    ("", None, None),
    (" Unsure.\nQ: x? So the answer is (b).", None, None),           # marker after next question
])
def test_parse_multiple_choice(reply, rationale, label):
    assert tuple(make_prompt("multiple_choice").parse(reply, SKY)) == (rationale, label)


FALL = Example(id="f", question="What makes an apple fall?", label="d",
               choices=("wind", "magnetism", "friction", "gravity", "light"))


@pytest.mark.parametrize("reply, rationale, label", [
    ("(d) gravity. The answer is (d) gravity.", "(d) gravity.", "d"),       # SmolLM2's shape, issue 24
    (" Things fall toward the Earth. The answer is (d).", "Things fall toward the Earth.", "d"),
    ("Mass pulls mass. The correct answer is (d) gravity.", "Mass pulls mass.", "d"),
    ("Gravity pulls it down!\nThe final answer is: gravity", "Gravity pulls it down!", "d"),
    ("I think the answer is (a)? No. The answer is (d).", "I think the answer is (a)? No.", "d"),
    ("Answer: (D)", None, "d"),
    ("**Answer:** (d) gravity", None, "d"),
    ("(d) gravity\nApples fall because of gravity.", None, "d"),              # an opening choice
    (" (d)", None, "d"),
    ("Gravity. So the answer is (d). The answer is (a).", "Gravity.", None),  # the prompt's marker; two letters
    ("The answer is (f).", None, None),                                        # no choice f
    ("Apples are red.", None, None),
    ("(a) or (d), hard to say.", None, None),                                  # two letters in its first line
])
def test_parse_replies_without_the_prompts_marker(reply, rationale, label):
    assert tuple(make_prompt("multiple_choice").parse(reply, FALL)) == (rationale, label)


@pytest.mark.parametrize("example, reply, label", [
    (WHALE, "Whales breathe air. The answer is no.", "no"),
    (WHALE, "Answer: yes", "yes"),
    (WHALE, "(a) yes", None),                                  # no opening choice for yes/no
    (SUM, "40 and 2 make 42. The answer is 42.", "42"),
    (SUM, "Answer: $42", "42"),
])
def test_parse_yes_no_and_numeric_without_the_marker(example, reply, label):
    assert make_prompt(example.kind).parse(reply, example).teacher_label == label


@pytest.mark.parametrize("example, reply, label", [
    (WHALE, "Whales are mammals. So the answer is no.", "no"),
    (WHALE, "So the answer is: Yes, it is.", "yes"),
    (WHALE, "So the answer is not clear.", None),
    (SUM, "40 + 2 = 42. So the answer is 42.", "42"),
    (SUM, "So the answer is $1,042.50.", "1042.5"),
    (SUM, "So the answer is (84 / 2).", "42"),
    (SUM, "So the answer is forty-two.", None),
])
def test_parse_yes_no_and_numeric(example, reply, label):
    assert make_prompt(example.kind).parse(reply, example).teacher_label == label


def test_kind_mismatch_and_custom_marker():
    with pytest.raises(ValueError, match="is yes_no, the prompt is for multiple_choice"):
        make_prompt("multiple_choice").render(WHALE)
    prompt = make_prompt("yes_no", answer_marker="Final answer:")
    assert tuple(prompt.parse("Mammal. Final answer: no", WHALE)) == ("Mammal.", "no")


def test_decoding_validation_and_stop_cutting():
    assert Decoding.from_dict(Decoding(temperature=0.7).to_dict()) == Decoding(temperature=0.7)
    with pytest.raises(ValueError, match="unknown decoding key.*max_tokens"):
        Decoding.from_dict({"max_tokens": 5})
    with pytest.raises(ValueError, match="temperature >= 0"):
        Decoding(temperature=-1)
    assert cut_at_stop("a\nQ: b\nQ: c", ("\nQ:",)) == "a" and cut_at_stop("abc", ()) == "abc"


@pytest.mark.parametrize("template, message", [
    ("Q: {question:>200000000}\n{choices}", "field {question:>200000000} has a format spec"),
    ("Q: {question!r}\n{choices}", "field {question!r} has a conversion"),
    ("Q: {question!s:^9}\n{choices}", "field {question!s:^9} has a conversion"),
    ("Q: {question}\n{choices:{gold}}", "field {choices:{gold}} has a format spec"),
    ("Q: {question.__class__}\n{choices}", "unknown field {question.__class__}"),
    ("Q: {question[0]}\n{choices}", "unknown field {question[0]}"),
    ("Q: {question}\n{choices}" + "x" * (1 << 20), "more than 1,048,576: a few-shot template is a few thousand"),
])
def test_a_template_cannot_expand_a_field(template, message):
    """A format spec could pad a field to any width (a 200 MB prompt from 30 bytes of template); a
    conversion or attribute reaches beyond the value. Only plain {field} is allowed."""
    with pytest.raises(ValueError) as e:
        make_prompt("multiple_choice", template=template)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_fill_substitutes_plain_fields_only():
    from cotdistill.teachers.prompts import fill
    assert fill("{{x}} {question}: {choices}{question}", {"question": "Q", "choices": "C"}) == "{x} Q: CQ"
    with pytest.raises(ValueError, match=r"field \{question:>9\} is not a plain field"):
        fill("{question:>9}", {"question": "Q"})
    assert make_prompt("multiple_choice", template="Q: {question}\n{choices}\nA:").render(
        Example(id="x", question="{gold:>9}", choices=("a {x}", "b"), label="a")) == \
        "Q: {gold:>9}\n(a) a {x}\n(b) b\nA:"                  # braces in the data stay text


def test_a_template_file_that_is_not_utf8_is_named(tmp_path):
    file = tmp_path / "p.txt"
    file.write_bytes("Q: {question}\n{choices}".encode("utf-16"))
    with pytest.raises(ValueError, match=r"^prompt template file .*p.txt: the file is UTF-16, not UTF-8; "
                                         r"re-save it as UTF-8$"):
        make_prompt("multiple_choice", template_file=file)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": float("nan")}, "finite temperature >= 0"),
    ({"temperature": float("inf")}, "finite temperature >= 0"),
    ({"top_p": float("nan")}, "0 < top_p <= 1"),
    ({"seed": -1}, "decoding.seed must be an integer from 0 to 4,294,967,295"),
    ({"seed": 2**32}, "decoding.seed must be an integer from 0 to 4,294,967,295"),
])
def test_decoding_numbers_are_finite_and_in_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Decoding(**kwargs)

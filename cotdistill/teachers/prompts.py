"""Few-shot chain-of-thought prompts per dataset kind, and parsing the teacher's reply.

    prompt = make_prompt("multiple_choice")                       # the built-in template
    prompt = make_prompt("yes_no", rationalize=True)              # the teacher is told the answer
    prompt = make_prompt("numeric", template_file="my_prompt.txt")
    text = prompt.render(example)
    rationale, teacher_label = prompt.parse(completion_text, example)

A template is text with plain named fields in braces (write literal braces as `{{ }}`); format
specs and conversions (`{question:>200}`, `{question!r}`) are refused, so a template can never make
a field longer than its value:
`{question}`; `{choices}` (multiple choice: one '(a) …' line per choice); `{gold_hint}` (empty,
or 'Hint: the correct answer is (c).' plus a newline when rationalizing); `{gold}` (the gold
answer as written in the reply, '(c)', 'yes', '42'; rationalizing only). The reply is expected to
end with "<answer_marker> <answer>" ('So the answer is (c).'); text after the first '\\nQ:' (the
model's own next few-shot question) is ignored. A reply without the marker is read by its last
statement of an answer ('The answer is (d) gravity.', 'Answer: (d)') or an opening choice ('(d)
gravity.'); one without a readable answer is unparsed: (rationale None, label None), never an error.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from cotdistill.data.arithmetic import try_evaluate
from cotdistill.data.readers import answer_letter
from cotdistill.examples import KINDS, LETTERS, Example, format_number
from cotdistill.safe_load import ParseError, read_text

FIELDS = ("question", "choices", "gold_hint", "gold")
MAX_TEMPLATE_BYTES = 1 << 20
"""A few-shot template is a few KB; every prompt repeats it."""
NEXT_QUESTION = "\nQ:"

MULTIPLE_CHOICE = """\
Answer each question. Reason step by step, then end with "So the answer is (x)." where x is the \
letter of the right choice.

Q: Where would you most likely keep milk so that it stays fresh?
Answer Choices:
(a) cupboard
(b) refrigerator
(c) oven
(d) mailbox
(e) garden
A: Milk spoils quickly when it is warm. A refrigerator keeps food cold. So the answer is (b).

Q: A metal spoon left in a pot of hot soup becomes hot because
Answer Choices:
(a) metal conducts heat
(b) soup is wet
(c) spoons are shiny
(d) the pot is round
A: Heat moves from the hot soup into the spoon. Metals pass heat along easily. So the answer is (a).

Q: {question}
Answer Choices:
{choices}
{gold_hint}A:"""

YES_NO = """\
Answer each question. Reason step by step, then end with "So the answer is yes." or \
"So the answer is no."

Q: Can you see the Moon during the day?
A: The Moon is often above the horizon in daytime, and it reflects enough sunlight to stand out \
against the blue sky. So the answer is yes.

Q: Is a whale a fish?
A: Whales breathe air with lungs and feed their young with milk. Those are traits of mammals, \
not fish. So the answer is no.

Q: {question}
{gold_hint}A:"""

NUMERIC = """\
Answer each question. Reason step by step, then end with "So the answer is N." where N is a number.

Q: Tom has 3 boxes with 12 pencils in each box. He gives away 8 pencils. How many pencils does he \
have left?
A: Tom has 3 * 12 = 36 pencils. After giving away 8 he has 36 - 8 = 28. So the answer is 28.

Q: A baker made 45 cookies and put them into bags of 5. How many bags did she fill?
A: Each bag holds 5 cookies, so she filled 45 / 5 = 9 bags. So the answer is 9.

Q: {question}
{gold_hint}A:"""

TEMPLATES = {"multiple_choice": MULTIPLE_CHOICE, "yes_no": YES_NO, "numeric": NUMERIC}


class Parsed(NamedTuple):
    rationale: str | None
    teacher_label: str | None


@dataclass(frozen=True)
class Prompt:
    """A few-shot CoT template for one kind of dataset; part of the cache key and provenance."""

    kind: str
    template: str
    rationalize: bool = False
    """Tell the teacher the gold answer (the template must use {gold_hint} or {gold})."""
    answer_marker: str = "So the answer is"
    name: str = "default"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        check_template(self.template, self.kind, self.rationalize)
        if not self.answer_marker.strip():
            raise ValueError("answer_marker is empty")

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, example: Example) -> str:
        """The full prompt for one example."""
        if example.kind != self.kind:
            raise ValueError(f"example {example.id!r} is {example.kind}, the prompt is for "
                             f"{self.kind}")
        gold = gold_text(example) if self.rationalize else ""
        hint = f"Hint: the correct answer is {gold}.\n" if self.rationalize else ""
        return fill(self.template, {"question": example.question.strip(), "gold": gold,
                                    "gold_hint": hint, "choices": choices_text(example)})

    def parse(self, text: str | None, example: Example) -> Parsed:
        """(rationale, teacher_label) of a reply; (None, None) where it cannot be read.

        The answer follows the first `answer_marker` ('So the answer is (d).': the rationale is the text
        before it). A reply without it is read by the last statement of an answer ('… The answer is
        (d) gravity.', 'The correct answer is (d)', 'Answer: (d)': the rationale is the text before that
        sentence), else by an opening choice ('(d) gravity. …': no rationale)."""
        head = (text or "").split(NEXT_QUESTION, 1)[0]
        at = head.lower().find(self.answer_marker.lower())
        if at >= 0:
            rationale = head[:at].strip() or None
            answer = head[at + len(self.answer_marker):]
        elif (found := _last_statement(head)) is not None:
            at, end = found
            rationale = head[:_sentence_start(head, at)].strip() or None
            answer = head[end:]
        else:
            opening = OPENING_CHOICE.match(head)
            if opening is None or example.kind != "multiple_choice":
                return Parsed(None, None)
            return Parsed(None, parse_answer(head.strip().split("\n", 1)[0], example))
        return Parsed(rationale, parse_answer(answer.strip().split("\n", 1)[0], example))


FALLBACK_MARKERS = re.compile(r"\banswer\s+is\b|\banswer\s*:", re.IGNORECASE)
"""How a reply that lacks the prompt's marker states its answer: '… the answer is …', 'The correct
answer is …', 'Answer: …'."""
OPENING_CHOICE = re.compile(r"\s*\(\s*[A-Za-z]\s*\)")
"""A reply that opens with its choice, '(d) gravity.'."""


def _last_statement(head: str) -> tuple[int, int] | None:
    """(start, end) of the last FALLBACK_MARKERS match in `head`, None if there is none."""
    found = None
    for match in FALLBACK_MARKERS.finditer(head):
        found = (match.start(), match.end())
    return found


def _sentence_start(text: str, at: int) -> int:
    """Where the sentence holding position `at` starts: after the last '.', '!', '?' or line break."""
    ends = [text.rfind(mark, 0, at) for mark in (". ", "! ", "? ", "\n")]
    last = max(ends)
    return 0 if last < 0 else last + 1


def make_prompt(kind: str, *, template: str | None = None, template_file: str | Path | None = None,
                rationalize: bool = False, answer_marker: str = "So the answer is") -> Prompt:
    """The built-in template of `kind`, or the user's (a string or a UTF-8 file)."""
    if template is not None and template_file is not None:
        raise ValueError("give a template string or a template file, not both")
    name = "default"
    if template_file is not None:
        path = Path(template_file)
        if not path.is_file():
            raise ValueError(f"prompt template file {path} not found")
        try:
            template, name = read_text(path, max_bytes=MAX_TEMPLATE_BYTES), path.name
        except (OSError, ParseError) as e:
            raise ValueError(f"prompt template file {path}: {getattr(e, 'strerror', None) or e}") from None
    elif template is not None:
        name = "custom"
    if kind not in TEMPLATES:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    try:
        return Prompt(kind, template if template is not None else TEMPLATES[kind], rationalize,
                      answer_marker, name)
    except ValueError as e:
        if template_file is None:
            raise
        raise ValueError(f"prompt template file {template_file}: {e}") from None


def _pieces(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """str.format's parse of the template (literal text, field, spec, conversion); ValueError in
    words if the braces do not pair up."""
    if not isinstance(template, str):
        raise ValueError(f"prompt template must be text, not {type(template).__name__}")
    if len(template) > MAX_TEMPLATE_BYTES:
        raise ValueError(f"prompt template has {len(template):,} characters, more than "
                         f"{MAX_TEMPLATE_BYTES:,}: a few-shot template is a few thousand")
    try:
        return list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"prompt template is not a valid format string ({e}); write literal "
                         f"braces as {{{{ and }}}}") from None


def fill(template: str, values: dict[str, str]) -> str:
    """The template with each plain `{field}` replaced by its value (no format spec or conversion
    is ever applied: check_template refuses them, and this ignores nothing silently)."""
    out = []
    for literal, field, spec, conversion in _pieces(template):
        out.append(literal)
        if field is not None:
            if spec or conversion or field not in values:
                raise ValueError(f"prompt template field {_written(field, spec, conversion)} is not a "
                                 f"plain field like {{question}}")
            out.append(values[field])
    return "".join(out)


def _written(field: str, spec: str | None, conversion: str | None) -> str:
    return "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def check_template(template: str, kind: str, rationalize: bool) -> None:
    """ValueError naming the problem if the template cannot render examples of `kind`."""
    pieces = _pieces(template)
    for _, field, spec, conversion in pieces:
        if field is not None and (spec or conversion):
            raise ValueError(f"prompt template field {_written(field, spec, conversion)} has a "
                             f"{'conversion' if conversion else 'format spec'}; only plain fields "
                             f"such as {{question}} are allowed (literal braces: {{{{ and }}}})")
    fields = {f for _, f, _, _ in pieces if f is not None}
    unknown = sorted(f or "{}" for f in fields if f not in FIELDS)
    if unknown:
        raise ValueError(f"prompt template uses unknown field {{{unknown[0]}}}; fields: "
                         f"{', '.join('{' + f + '}' for f in FIELDS)}")
    needed = ["question"] + (["choices"] if kind == "multiple_choice" else [])
    missing = [f for f in needed if f not in fields]
    if missing:
        raise ValueError(f"prompt template for {kind} lacks the field {{{missing[0]}}}")
    if rationalize and not fields & {"gold", "gold_hint"}:
        raise ValueError("rationalize is on but the template uses neither {gold_hint} nor {gold}")
    if not rationalize and "gold" in fields:
        raise ValueError("the template shows {gold} but rationalize is off: the teacher would be "
                         "told the answer without the provenance saying so")


def choices_text(example: Example) -> str:
    if example.kind != "multiple_choice":
        return ""
    return "\n".join(f"({LETTERS[i]}) {c.strip()}" for i, c in enumerate(example.choices))


def gold_text(example: Example) -> str:
    return f"({example.label})" if example.kind == "multiple_choice" else example.label


def parse_answer(answer: str, example: Example) -> str | None:
    """The label named in the text after the answer marker, in the example's label space."""
    answer = answer.strip().lstrip(":").strip().strip("*\"'").strip()
    if example.kind == "multiple_choice":
        return _choice(answer, example.choices)
    if example.kind == "yes_no":
        match = re.match(r"(yes|no)\b", answer.lower())
        return match.group(1) if match else None
    return _number(answer)


def _choice(answer: str, choices: tuple[str, ...]) -> str | None:
    letter = answer_letter(answer, len(choices))              # '(c)', '(c) inkwell'
    if letter:
        return letter
    match = re.match(r"([a-z])(?:[).:,]|$)", answer.lower())  # 'c', 'c) inkwell'; not 'a cup'
    if match and match.group(1) in LETTERS[:len(choices)]:
        return match.group(1)
    text = answer.rstrip(".").strip().casefold()                # the choice's own text
    named = [i for i, c in enumerate(choices) if c.strip().casefold() == text]
    return LETTERS[named[0]] if named else None


def _number(answer: str) -> str | None:
    text = answer.replace("$", "").rstrip(".").strip()
    value = try_evaluate(text)                                   # '(84 / 2)'
    if value is None:
        match = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
        value = try_evaluate(match.group(0).replace(",", "")) if match else None
    return None if value is None else format_number(value)

"""Choices inside the question (cotdistill.data.choices), text labels (cotdistill.data.labels) and
placeholder rationales (cotdistill.data.placeholders): exact values on constructed text (issue 23)."""

import pytest

from cotdistill.errors import ChoiceError
from cotdistill.data.choices import split_choices
from cotdistill.data.labels import text_matches, to_letter
from cotdistill.data.placeholders import placeholder_reason


@pytest.mark.parametrize("text, expected", [
    # lower and upper case, each marker style, with and without a header
    ("Q? (a) x (b) y", ("Q?", ("x", "y"))),
    ("Q? (A) DNA (B) photosynthesis (C) ATP", ("Q?", ("DNA", "photosynthesis", "ATP"))),
    ("Q? a) one b) two", ("Q?", ("one", "two"))),
    ("Q? A) one B) two", ("Q?", ("one", "two"))),
    ("Q? A. one B. two C. three", ("Q?", ("one", "two", "three"))),
    ("Q: wet? Answer Choices: (A) water (B) sand", ("Q: wet?", ("water", "sand"))),
    ("Q?\nOptions:\n(a) pocket\n(b) fridge", ("Q?", ("pocket", "fridge"))),
    ("Q?\nOptions:\n- apple\n- brick", ("Q?", ("apple", "brick"))),
    ("Q?\nOptions:\n- (A) DNA\n- (B) RNA", ("Q?", ("DNA", "RNA"))),      # markers stripped
    ("Q?\n- (a) DNA\n- (b) RNA", ("Q?", ("DNA", "RNA"))),                # dashes, no header
    ("Q?\nOptions:\n- A. hot\n- B. cold", ("Q?", ("hot", "cold"))),
    # markers before the options block stay in the stem
    ("If P(A) = 1/3 and P(B) = 2/15, what is P(A or B)? (A) 1/5 (B) 7/15",
     ("If P(A) = 1/3 and P(B) = 2/15, what is P(A or B)?", ("1/5", "7/15"))),
    ("Is f(a) > f(b)? (a) yes (b) no", ("Is f(a) > f(b)?", ("yes", "no"))),
    ("Statement (a) or (b)? (a) only (a) (b) only (b) (c) both",
     ("Statement (a) or (b)?", ("only (a)", "only (b)", "both"))),
    ("Q? (a) x (b) y (c) both (a) and (b)", ("Q?", ("x", "y", "both (a) and (b)"))),
    # a header earlier in the stem: the last one counts
    ("Choices: think first. Which? Options:\n- a1\n- b1", ("Choices: think first. Which?",
                                                         ("a1", "b1"))),
])
def test_split_choices(text, expected):
    assert split_choices(text) == expected


def test_no_choices_is_none():
    assert split_choices("Where is it?") is None
    assert split_choices("(a) x (b) y") is None                     # no stem: nothing to ask
    assert split_choices("Q? Options:\n- x\nnot a dash") is None


@pytest.mark.parametrize("text, message", [
    ("Q? (a) x (b) y (d) z", "the choice markers (a), (b) are followed by (d): they must run "
                             "(a), (b), … without a gap"),
    ("Q? A. x B. y D. z", "the choice markers A., B. are followed by D.: they must run A., B., "
                          "… without a gap"),
    ("Q? (b) x (c) y", "the choice markers start at (b), not at (a): they must run (a), (b), … "
                       "from the first letter"),
])
def test_markers_that_are_not_consecutive_are_refused(text, message):
    with pytest.raises(ChoiceError) as e:
        split_choices(text)
    assert str(e.value) == message


def test_text_labels_exact_first_then_one_loose_match():
    assert text_matches("WW or Ww", ["WW or ww", "WW or Ww", "ww"]) == [1]     # exact wins
    assert text_matches("Rr", ["R", "rr", "Rr", "RR"]) == [2]
    assert text_matches("Short  stem", ["Tall stem", "short stem"]) == [1]  # case and spaces
    assert text_matches("rR", ["R", "rr", "Rr", "RR"]) == [1, 2, 3]         # ambiguous
    assert text_matches("green", ["red", "blue"]) == []
    assert to_letter("WW or Ww", "text", ["WW or ww", "WW or Ww"]) == "b"
    assert to_letter("rR", "text", ["R", "rr", "Rr", "RR"]) is None
    assert to_letter("(B) fridge", "text", ["pocket", "fridge"]) == "b"       # marker + text
    assert to_letter("(B) fridge", "letter", ["pocket", "fridge"]) == "b"
    assert to_letter("(B) oven", "letter", ["pocket", "fridge"]) is None      # text disagrees


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   ", "empty"), (None, "empty"), ("nan", "the word 'nan'"),
    ("NaN", "the word 'NaN'"), ("None.", "the word 'None.'"), ("N/A", "the word 'N/A'"),
    ("dummy", "the word 'dummy'"), ("-", "the word '-'"), ("null", "the word 'null'"),
    ("Photosynthesis.", "a single word"), ("Plants make sugar from light.", None),
    ("No wings.", None),
])
def test_placeholder_reason(text, reason):
    assert placeholder_reason(text) == reason

"""Importing your own rationales on the Datasets screen: a file uploaded through the uploader (or a
path in the data folder) read with a mapping, previewed (first parsed rows and the data report),
imported as a named set that is then listed; a malformed file refused with its row, under the widget
it belongs to, and nothing written."""

import shutil
from pathlib import Path

import pytest

from tests.app.apptest import frame_with, open_page, texts, use_fresh_database, widget

FIX = Path(__file__).resolve().parents[1] / "data" / "fixtures"
LEAKY = (b'{"id": "q1", "question": "Sky colour? (a) red (b) blue", "label": "b", '
         b'"rationale": "Air scatters short wavelengths. So the answer is (b)."}\n'
         b'{"id": "q2", "question": "Grass colour? (a) green (b) blue", "label": "a", '
         b'"rationale": "Chlorophyll reflects that light."}\n')


@pytest.fixture
def state(tmp_path, monkeypatch):
    use_fresh_database(tmp_path, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(data))
    monkeypatch.delenv("COTDISTILL_ALLOWED_PATHS", raising=False)
    return tmp_path


def upload(at, name: str, content: bytes, split: str = "train"):
    return at.file_uploader(key=f"imp_upload_{split}").set_value((name, content, "application/json")).run()


def in_order(node):
    """Every element under `node`, in page order."""
    children = getattr(node, "children", None)
    if not children:
        yield node
        return
    for key in sorted(children):
        yield from in_order(children[key])


def column_of(at, key: str):
    """The column block that holds the widget with this key."""
    found = [c for c in at.columns if any(getattr(w, "key", None) == key for w in in_order(c))]
    assert found, f"no column holds {key}"
    return found[-1]


def preview(at):
    """The preview's table of parsed rows."""
    return frame_with(at, "id", "choices", "label")


def sets_on_disk(home: Path) -> list[str]:
    root = home / "rationale_sets"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_upload_preview_report_import_and_the_set_is_listed(state):
    from worker import api
    at = open_page("screens/datasets.py")
    upload(at, "sky.jsonl", LEAKY)
    widget(at.radio, "Choices are written").set_value("inside the question text").run()
    assert not at.error, [e.value for e in at.error]
    rows = preview(at)
    assert rows["question"].tolist() == ["Sky colour?", "Grass colour?"]        # the stem only
    assert rows["choices"].tolist() == ["red | blue", "green | blue"]
    assert rows["label"].tolist() == ["b", "a"]
    report = at.code[0].value
    assert "train: 2 rows, 2 with a rationale" in report
    assert "leak 1 (50.0%: 1 state the answer, 0 open with it, 0 quote the gold choice)" in report
    assert any(w.value.startswith("train: 1 of 2 rationales (50%) name the gold answer") for w in at.warning)

    at.text_area(key="imp_cut").input("So the answer is").run()                 # cut: no leak left
    assert "leak 0 (0.0%" in at.code[0].value
    assert preview(at)["rationale"].tolist() == [
        "Air scatters short wavelengths.", "Chlorophyll reflects that light."]
    assert at.text_input(key="imp_name").value == "sky"
    at.text_input(key="imp_name").input("sky-mine").run()
    widget(at.button, "Import as a rationale set").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.success] == [
        f"Imported rationale set #1 'sky-mine' ({state / 'rationale_sets' / 'sky-mine'})."]
    listed = frame_with(at, "set", "name")
    assert listed["name"].tolist() == ["sky-mine"]
    sets = api.list_rationale_sets()
    assert [(s["name"], s["n_examples"]) for s in sets] == [("sky-mine", 2)]
    assert sets[0]["provenance"]["dataset"]["options"]["rationale_cut"] == ["So the answer is"]

    widget(at.button, "Import as a rationale set").click().run()                # the same name again
    assert [e.value for e in column_of(at, "imp_name").error] == [
        "a rationale set named 'sky-mine' already exists and sets are immutable: choose another name"]
    assert sets_on_disk(state) == ["sky-mine"]


def test_a_row_that_fails_is_named_under_its_column_and_nothing_is_written(state):
    from worker import api
    at = open_page("screens/datasets.py")
    upload(at, "embedded_bad.jsonl", (FIX / "embedded_bad.jsonl").read_bytes())
    widget(at.radio, "Choices are written").set_value("inside the question text").run()
    at.text_input(key="imp_col_question").input("input").run()
    errors = [e.value for e in column_of(at, "imp_col_question").error]
    assert len(errors) == 1 and "row 2, field 'input': no choices found in the question text " \
                                "'No choices written here'" in errors[0], errors
    assert "(line 2 of the JSON Lines file)" in errors[0]
    assert len(at.error) == 1                                                    # shown once, there
    assert widget(at.button, "Import as a rationale set").disabled
    assert not [d for d in at.dataframe if "choices" in d.value.columns]      # no preview either
    assert sets_on_disk(state) == [] and api.list_rationale_sets() == []


def test_a_file_that_is_not_json_lines_is_refused_under_the_uploader(state):
    from worker import api
    at = open_page("screens/datasets.py")
    upload(at, "broken.jsonl", b'{"id": "q1", "question": "x", "choices": ["u", "v"], "label": "a"}\n'
                                 b'{"id": "q2", oops\n')
    elements = list(in_order(at.main))
    uploader = next(i for i, e in enumerate(elements) if getattr(e, "key", None) == "imp_upload_train")
    errors = [i for i, e in enumerate(elements) if e.type == "error"]
    assert errors == [uploader + 1]                                              # right under it
    assert "row 2: line 2 is not valid JSON" in elements[errors[0]].value
    assert widget(at.button, "Import as a rationale set").disabled
    assert sets_on_disk(state) == [] and api.list_rationale_sets() == []


def test_a_path_in_the_data_folder_reads_and_one_outside_is_refused(state):
    shutil.copy(FIX / "array.json", state / "data" / "array.json")
    outside = state.parent / f"{state.name}-outside.json"      # neither data nor state folder
    shutil.copy(FIX / "array.json", outside)
    at = open_page("screens/datasets.py")
    at.radio(key="imp_how_train").set_value("a path in the data folder").run()
    at.text_input(key="imp_path_train").input(str(outside)).run()
    assert len(at.error) == 1 and "is outside the folders jobs may read" in at.error[0].value
    assert "Sky colour" not in texts(at)                                         # no byte of it shown
    at.text_input(key="imp_path_train").input("array.json").run()               # inside the data folder
    at.text_input(key="imp_col_label").input("answer").run()
    assert not at.error, [e.value for e in at.error]
    assert preview(at)["label"].tolist() == ["b", "a"]
    at.number_input(key="imp_holdout").set_value(0.5).run()
    assert "train: 1 rows" in at.code[0].value and "test: 1 rows" in at.code[0].value


def test_the_data_report_of_an_imported_set_and_of_a_dataset(state):
    from worker import api
    path = api.save_upload("sky.jsonl", LEAKY)
    made = api.import_rationale_set({"train": path}, {"embedded_choices": True}, "sky")
    assert made["error"] is None
    at = open_page("screens/datasets.py")
    at.toggle(key="set_report").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.code[0].value.startswith("train: 2 rows, 2 with a rationale, words median 6.5 (min 4, max 9)"
                                       "; labels {'a': 1, 'b': 1}; leak 1 (50.0%: 1 state the answer")
    assert any(w.value.startswith("train: 1 of 2 rationales (50%) name the gold answer") for w in at.warning)

    at = open_page("screens/datasets.py")
    name = at.selectbox(key="browse_dataset").value
    at.toggle(key="browse_report").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    expected = api.dataset_report(name, list(next(i for i in api.list_datasets() if i["name"] == name)["counts"]))
    assert at.code[0].value == expected["report_text"] and expected["report_text"].startswith("train: ")


def test_rationales_kept_in_numbered_files_are_read_in_number_order(state):
    from worker import api
    at = open_page("screens/datasets.py")
    upload(at, "questions.json", (FIX / "questions.json").read_bytes())
    widget(at.selectbox, "Kind").set_value("yes_no").run()
    at.text_input(key="imp_col_label").input("answer").run()
    rationales = at.file_uploader(key="imp_upload_rationales")
    rationales.set_value([("rationales_1.json", (FIX / "rationales_1.json").read_bytes(), "application/json")]).run()
    elements = list(in_order(at.main))
    uploader = next(i for i, e in enumerate(elements) if getattr(e, "key", None) == "imp_upload_rationales")
    assert elements[uploader + 1].type == "error"                               # under the rationale files
    assert "1 rationales in" in elements[uploader + 1].value and "for 3 rows" in elements[uploader + 1].value
    assert len(at.error) == 1

    at.file_uploader(key="imp_upload_rationales").set_value(
        [(name, (FIX / name).read_bytes(), "application/json") for name in ("rationales_1.json", "rationales_0.json")]
    ).run()
    assert not at.error, [e.value for e in at.error]
    assert preview(at)["rationale"].tolist() == ["Air scatters blue light.", "Fish swim; they lack wings.",
                                                 "Ice is frozen water."]
    widget(at.button, "Import as a rationale set").click().run()
    sets = api.list_rationale_sets()
    assert [(s["name"], s["n_examples"]) for s in sets] == [("questions", 3)]
    stored = sets[0]["provenance"]["dataset"]["split_options"]["train"]["rationales"]
    assert [Path(p).name for p in stored] == ["rationales_0.json", "rationales_1.json"]
    assert all(Path(p).is_relative_to(state / "uploads") for p in stored)


def test_a_set_made_with_the_cli_is_listed_on_datasets_launch_and_key_tokens(state):
    """Why (issue 23): sets imported with `cotdistill data import` never appeared in the app."""
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.data.store import import_file
    import_file(FIX / "chains.jsonl", sets_root() / "cli-chains", holdout=0.25, kind="yes_no",
                columns={"label": "answer", "rationale": "chain"})
    at = open_page("screens/datasets.py")
    assert not at.exception, [e.value for e in at.exception]
    assert frame_with(at, "set", "name")["name"].tolist() == ["cli-chains"]
    [set_id] = frame_with(at, "set", "name")["set"].tolist()
    launch = open_page("screens/launch.py")
    widget(launch.radio, "Data").set_value("set").run()
    assert launch.selectbox(key="launch_set").value == set_id
    keys = open_page("screens/key_tokens.py")
    widget(keys.radio, "Scoring model").set_value("student").run()
    label = f"rationale set: cli-chains (#{set_id})"
    assert label in keys.selectbox(key="attr_dataset_student").options
    keys.selectbox(key="attr_dataset_student").set_value(label).run()
    assert keys.multiselect(key=f"attr_splits_student_{label}").options == ["train", "test"]

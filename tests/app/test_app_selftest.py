"""The Datasets screen's self-test panel: the button queues the suite, and the verdicts of its
finished runs are shown (runs finished by writing their predictions: tests/worker/test_selftest.py)."""

from tests.worker.test_selftest import finish, lab  # noqa: F401  (the fixture)


def test_the_datasets_screen_runs_the_self_test(lab):
    from tests.app.apptest import open_page, widget
    at = open_page("screens/datasets.py")
    assert any("The self-test has not run yet" in i.value for i in at.info)
    widget(at.button, "Run the self-test").click().run()
    assert any("Self-test queued: 12 new run(s)" in s.value for s in at.success)
    assert any("Self-test running: 0 of 12 runs finished" in i.value for i in at.info)
    finish({("none", "none", 0.0): 0.4, ("after", "none", 0.0): 0.9, ("after", "none", 1.0): 0.4,
            ("after", "filler", 0.0): 0.4})
    at = open_page("screens/datasets.py")
    [table] = [d.value for d in at.dataframe if "control" in d.value.columns]
    assert list(table["passed"]) == ["yes"] * 4
    assert list(table["seed pairs"])[:3] == [3, 3, 3]            # judged over seed pairs (the procedure)
    assert {"test set low", "test set high", "test set p"} <= set(table.columns)
    assert any("paired t interval" in c.value for c in at.caption)
    assert any(s.value.startswith("the pipeline detects what it should") for s in at.success)

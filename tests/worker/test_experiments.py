import pytest
import yaml
from sqlalchemy import select

from cotdistill.errors import ConfigError
from worker.db import make_engine, session_factory, upgrade
from worker.experiments import Matrix, expand, load_matrix, submit
from worker.models import Run

MATRIX = {"name": "placements", "base": "base.yaml",
          "factors": {"placement": ["none", "before", "after"], "seed": [0, 1]}}


@pytest.fixture
def matrix_file(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"data": {"name": "synthetic-count"},
                                                        "train": {"steps": 7}, "name": "ignored"}))
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(MATRIX))
    return path


@pytest.fixture
def session(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


def test_expand_is_the_cartesian_product(matrix_file):
    cells = expand(load_matrix(matrix_file))
    assert len(cells) == 6
    assert [c.placement for _, c in cells] == ["none", "none", "before", "before", "after", "after"]
    assert all(c.train.steps == 7 and c.data.name == "synthetic-count" and c.name == "placements"
               for _, c in cells)
    assert len({c.hash() for _, c in cells}) == 6
    assert cells[1][0] == {"placement": "none", "seed": 1}


def test_nested_factor_values_and_bad_cells():
    m = Matrix("p", {}, {"perturbation": [{"kind": "none"}, {"kind": "mask", "params": {"p": 0.3}}]})
    cells = expand(m)
    assert cells[1][1].perturbation.params["p"] == 0.3
    with pytest.raises(ConfigError, match=r"cell \{'placement': 'middle'\}"):
        expand(Matrix("p", {}, {"placement": ["after", "middle"]}))


def test_bad_matrix_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfactors: {seed: 3}\n")
    with pytest.raises(ConfigError, match="factor 'seed' must be a non-empty list"):
        load_matrix(bad)
    bad.write_text("name: x\nbase: nope.yaml\nfactors: {seed: [1]}\n")
    with pytest.raises(ConfigError, match="base config nope.yaml not found"):
        load_matrix(bad)


def test_resubmitting_queues_only_missing_or_failed(matrix_file, session):
    m = load_matrix(matrix_file)
    first = submit(session, m)
    assert len(first.queued) == 6 and not first.kept
    again = submit(session, m)
    assert not again.queued and sorted(again.kept) == sorted(first.queued)
    failed = session.get(Run, first.queued[2])
    failed.status, failed.error = "failed", "boom"
    session.commit()
    third = submit(session, m)
    assert third.queued == [failed.id]
    assert session.get(Run, failed.id).attempt == 1 and session.get(Run, failed.id).error is None
    assert session.scalar(select(Run).where(Run.id == failed.id)).status == "queued"
    assert len(session.scalars(select(Run)).all()) == 6           # no duplicate rows


def test_identical_config_that_succeeded_is_reused_unless_forced(matrix_file, session):
    m = load_matrix(matrix_file)
    first = submit(session, m)
    for run in session.scalars(select(Run)):
        run.status = "succeeded"
    session.commit()
    other = Matrix("other", m.base, {"placement": ["after"], "seed": [0, 1, 2]})   # the hash ignores names
    result = submit(session, other)
    assert len(result.reused) == 2 and len(result.queued) == 1
    forced = submit(session, m, force=True)
    assert len(forced.queued) == 6 and set(forced.queued).isdisjoint(first.queued)


def test_variant_factor_sets_keys_together():
    m = Matrix("study", {}, {"variant": [{"placement": "none"},
                                         {"placement": "after", "perturbation.kind": "shuffle"},
                                         {"placement": "after", "perturbation": {"kind": "mask", "params": {"p": 0.5}}}],
                             "seed": [0, 1]})
    cells = expand(m)
    assert [(c.placement, c.perturbation.kind, c.seed) for _, c in cells] == [
        ("none", "none", 0), ("none", "none", 1), ("after", "shuffle", 0), ("after", "shuffle", 1),
        ("after", "mask", 0), ("after", "mask", 1)]
    assert cells[4][1].perturbation.params["p"] == 0.5


def test_same_name_with_another_matrix_is_an_error_or_a_new_version(matrix_file, session):
    m = load_matrix(matrix_file)
    first = submit(session, m)
    changed = Matrix(m.name, m.base, {"placement": ["after"], "seed": [5]})
    with pytest.raises(ConfigError, match=r"experiment 'placements' already exists with another matrix.*"
                                          r"--new-version to make placements@2"):
        submit(session, changed)
    assert len(session.scalars(select(Run)).all()) == 6            # nothing queued by the refused submit
    v2 = submit(session, changed, new_version=True)
    assert v2.name == "placements@2" and v2.experiment_id != first.experiment_id and len(v2.queued) == 1
    assert submit(session, changed, new_version=True).name == "placements@2"   # same matrix: same version


def test_duplicate_cells_are_reported_as_duplicates(session):
    result = submit(session, Matrix("dups", {"train": {"steps": 3}}, {"seed": [0, 0, 1]}))
    assert len(result.queued) == 2 and result.kept == [] and result.duplicates == [{"seed": 0}]


def test_large_matrix_needs_confirmation_and_validates_every_cell_first(session):
    from worker.experiments import CONFIRM_ABOVE, NeedsConfirmation
    big = Matrix("big", {"train": {"steps": 3}}, {"seed": list(range(CONFIRM_ABOVE + 1))})
    with pytest.raises(NeedsConfirmation, match=rf"{CONFIRM_ABOVE + 1} cells, more than {CONFIRM_ABOVE}"):
        submit(session, big)
    assert session.scalars(select(Run)).all() == []
    bad = Matrix("bad", {}, {"seed": [0, 1], "placement": ["after", "middle"]})
    with pytest.raises(ConfigError, match="middle"):
        submit(session, bad)
    assert session.scalars(select(Run)).all() == []               # the valid cells were not queued either
    assert len(submit(session, Matrix("small", {"train": {"steps": 3}}, {"seed": [0, 1]})).queued) == 2


def test_identical_queued_cells_in_two_experiments_are_shared(session):
    a = submit(session, Matrix("a", {"train": {"steps": 3}}, {"seed": [0, 1]}))
    b = submit(session, Matrix("b", {"train": {"steps": 3}}, {"seed": [1, 2]}))
    assert b.shared == [a.queued[1]] and len(b.queued) == 1
    assert len(session.scalars(select(Run)).all()) == 3


def test_older_results_version_is_not_reused_unless_asked(session):
    old = submit(session, Matrix("old", {"train": {"steps": 3}}, {"seed": [0]}))
    run = session.get(Run, old.queued[0])
    run.status, run.config_hash, run.summary = "succeeded", "0ld0ld0ld0ld", {"accuracy": 0.5}   # version 1
    session.commit()
    again = submit(session, Matrix("new", {"train": {"steps": 3}}, {"seed": [0]}))
    assert again.outdated == [run.id] and len(again.queued) == 1 and again.reused == []
    session.get(Run, again.queued[0]).status = "cancelled"
    session.commit()
    asked = submit(session, Matrix("asked", {"train": {"steps": 3}}, {"seed": [0]}), reuse_old=True)
    assert asked.reused == [run.id] and asked.queued == []


def test_label_only_cells_ignore_the_perturbation_and_run_once(session):
    """Placement none trains on no rationale: its perturbation cells are one run, reported as duplicates."""
    m = Matrix("first", {"data": {"name": "synthetic-count"}, "train": {"steps": 3}},
               {"placement": ["none", "after"], "perturbation": [{"kind": "none"}, {"kind": "filler"}],
                "seed": [0]})
    cells = expand(m)
    assert [(c.placement, c.perturbation.kind) for _, c in cells] == [
        ("none", "none"), ("none", "none"), ("after", "none"), ("after", "filler")]
    assert cells[0][1].hash() == cells[1][1].hash()
    result = submit(session, m)
    assert len(result.queued) == 3 and result.duplicates == [{"placement": "none", "perturbation": {"kind": "filler"},
                                                              "seed": 0}]


def test_the_untouched_student_is_one_run_per_protocol_and_seed():
    """train.steps [200, 0]: every arm trained, plus the untouched student once per evaluation protocol
    (after is scored like none and becomes none; perturbations dropped) and seed."""
    m = Matrix("base", {"data": {"name": "synthetic-count"}, "rationale_weight": 0.5},
               {"placement": ["none", "before", "after"], "perturbation": [{"kind": "none"}, {"kind": "shuffle"}],
                "seed": [0, 1], "train.steps": [200, 0]})
    cells = expand(m)
    untouched = [c for _, c in cells if c.train.steps == 0]
    assert len(cells) == 24 and len(untouched) == 12
    assert {(c.placement, c.perturbation.kind, c.rationale_weight) for c in untouched} == \
        {("none", "none", 1.0), ("before", "none", 1.0)}
    assert len({c.hash() for c in untouched}) == 4                # none and before, seeds 0 and 1
    trained = [c for _, c in cells if c.train.steps == 200]
    assert len({c.hash() for c in trained}) == 2 * 2 + 2 * 2 + 2    # before and after × 2 kinds × 2 seeds, none × 2


def test_a_scored_before_cell_is_refused_before_anything_is_queued(session):
    m = Matrix("scored", {"eval": {"mode": "score"}}, {"placement": ["after", "before"]})
    with pytest.raises(ConfigError) as e:
        expand(m)
    assert str(e.value) == ("matrix 'scored', cell {'placement': 'before'}: eval.mode: score is refused for "
                            "placement before: a `before` student answers after its own rationale, so it is "
                            "evaluated by generation; use eval.mode auto or generate")
    with pytest.raises(ConfigError):
        submit(session, m)
    assert session.scalars(select(Run)).all() == []


def test_four_concurrent_submits_of_one_experiment_queue_it_once(sessions, monkeypatch):
    """Four submits of one new experiment at the same moment (each has looked the name up and found
    nothing before any inserts it: a barrier holds them there): no error, the cells queued once, and
    the three later submits find them queued (`kept`). On a SQLite file and on PostgreSQL."""
    import threading
    from sqlalchemy import func
    from sqlalchemy.orm import Session
    from worker.models import Experiment
    matrix = Matrix("together", {"data": {"name": "synthetic-count"}, "train": {"steps": 3}},
                    {"seed": [0, 1, 2]})
    barrier, real_add, waits = threading.Barrier(4, timeout=60), Session.add, []

    def add_after_all_looked(self, instance, *args, **kwargs):
        if isinstance(instance, Experiment) and len(waits) < 4:
            waits.append(instance.name)
            barrier.wait()
        return real_add(self, instance, *args, **kwargs)

    monkeypatch.setattr(Session, "add", add_after_all_looked)
    results, errors = [], []

    def one_submit():
        try:
            with sessions() as s:
                results.append(submit(s, matrix))
        except Exception as e:                   # noqa: BLE001 -- the test reports it
            errors.append(repr(e))

    threads = [threading.Thread(target=one_submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(waits) == 4 and len(results) == 4
    first = [r for r in results if r.queued]
    assert len(first) == 1 and len(first[0].queued) == 3
    assert all(sorted(r.kept) == sorted(first[0].queued) for r in results if r is not first[0])
    assert {r.experiment_id for r in results} == {first[0].experiment_id}
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Experiment)) == 1
        runs = s.scalars(select(Run)).all()
        assert sorted(r.id for r in runs) == sorted(first[0].queued)
        assert all(r.status == "queued" and r.attempt == 0 for r in runs)
@pytest.mark.parametrize("text,message", [
    ("name: x\nbase: [1, 2]\nfactors: {seed: [0]}\n", "m.yaml: base must be a run config file name or a "
                                                       "mapping of run settings, not [1, 2]"),
    ("name: x\nbase: 5\nfactors: {seed: [0]}\n", "base must be a run config file name or a mapping"),
    ("- name\n- x\n", "m.yaml: a matrix is a mapping with `name` and `factors`, not a list"),
    ("name: [x]\nfactors: {seed: [0]}\n", "m.yaml: name must be text, not ['x']"),
    ("name: x\nfactors: {'train..lr': [1]}\n", "m.yaml: factor 'train..lr' is not a dotted key"),
    ("name: x\nfactors: {seed: [0]}\nname: y\n", "m.yaml: the key 'name' is written twice"),
    ("name: x\nbase: base.yaml\nfactors: {seed: [0]}\n", "base config "),
    ("name: x\nbase: {placement: after}\nfactors: {placement.kind: [a]}\n",
     "placement is not a section, so placement.kind cannot be set"),
    ("name: x\nfactors: {seed: [.nan]}\n", "seed: expected an integer, got nan"),
    ("name: x\nfactors: {train.clip: [.nan]}\n", "train.clip: expected a finite number, got nan"),
])
def test_bad_matrix_structure_is_one_sentence(tmp_path, text, message):
    (tmp_path / "base.yaml").write_bytes("seed: 1\n".encode("utf-16"))
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        expand(load_matrix(path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_matrix_given_as_data_is_checked_like_a_file():
    from worker.experiments import matrix_of
    with pytest.raises(ConfigError, match=r"^matrix: base must be an inline run config: a mapping of run "
                                          r"settings, not 'base.yaml'$"):
        matrix_of({"name": "x", "base": "base.yaml", "factors": {"seed": [0]}})
    with pytest.raises(ConfigError, match="^matrix: a matrix needs `name` and `factors`"):
        matrix_of({"factors": {"seed": [0]}})
    assert matrix_of({"name": "x", "factors": {"seed": [0]}}) == Matrix("x", {}, {"seed": [0]})

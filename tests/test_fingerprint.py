"""The config hash covers content, precision, device and the results version (cotdistill.fingerprint)."""

import json

import pytest

import cotdistill
from cotdistill.config import load_config
from cotdistill.fingerprint import data_hash, file_digests, resolve_precision, scores_hash


def _write_rows(path, rationale="because it is red"):
    rows = [{"id": f"q{i}", "question": f"what colour {i}?", "choices": ["red", "blue"], "label": "a",
             "rationale": rationale if i == 1 else "it scatters light"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _file_config(path, *overrides):
    return load_config(None, ["data.name=file", f"data.options.path={path}", *overrides])


def test_changing_one_rationale_changes_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    path = tmp_path / "data.jsonl"
    _write_rows(path)
    before = _file_config(path)
    h1, d1 = before.hash("cpu"), data_hash(before.data)
    assert _file_config(path).hash("cpu") == h1                     # stable (and cached)
    _write_rows(path, rationale="because it is blue")
    after = _file_config(path)
    assert data_hash(after.data) != d1 and after.hash("cpu") != h1
    assert after.settings_hash() == before.settings_hash()          # same settings, other content


def test_digest_cache_is_keyed_by_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    path = tmp_path / "f.txt"
    path.write_text("abc")
    assert file_digests([path]) == [(str(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    assert (tmp_path / "home" / "digests.json").is_file()
    assert file_digests([tmp_path / "nope"]) == [(str(tmp_path / "nope"), "missing")]


def test_synthetic_hash_follows_its_parameters_and_scores_content(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    a = load_config(None, ["data.name=synthetic"])
    b = load_config(None, ["data.name=synthetic", "data.options.steps=5"])
    assert data_hash(a.data) != data_hash(b.data)
    scores = tmp_path / "s.jsonl"
    scores.write_text('{"example_id": "q0", "scores": [1, 2]}\n')
    k = ["perturbation.kind=key_tokens", f"perturbation.scores_file={scores}"]
    first, h = scores_hash(str(scores)), load_config(None, k).hash("cpu")
    scores.write_text('{"example_id": "q0", "scores": [2, 1]}\n')
    assert scores_hash(str(scores)) != first and load_config(None, k).hash("cpu") != h


def test_hash_covers_resolved_precision_device_and_results_version(monkeypatch):
    cfg = load_config(None)
    assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("auto", "cuda:1") == "bf16"
    assert cfg.identity("cuda:1")["precision"] == "bf16" and cfg.identity("cpu")["device"] == "cpu"
    assert cfg.hash("cpu") != cfg.hash("cuda")
    assert cfg.hash("cuda") == load_config(None, ["train.precision=bf16"]).hash("cuda")
    assert cfg.identity("cpu")["results_version"] == cotdistill.RESULTS_VERSION == 5
    h = cfg.hash("cpu")
    monkeypatch.setattr(cotdistill, "RESULTS_VERSION", 6)
    assert cfg.hash("cpu") != h

"""A full disk (an injected ENOSPC) while a run writes its folder: one sentence naming what and where,
and what a retry resumes from; no half-written file left behind; the last good checkpoint verifies,
and a retry resumes from it. (tests/worker/test_faults.py fills a real 9 MiB file system.)"""

import errno
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotdistill import run as runner
from cotdistill.train.checkpoints import candidates, verify
from cotdistill.config import RunConfig, from_dict
from cotdistill.errors import WriteFailed
from cotdistill.run import run

CONFIG = {"data": {"name": "synthetic-count",
                   "options": {"n_train": 24, "n_test": 8, "n_items": 3, "n_objects": 12, "n_colours": 3}},
          "placement": "after", "student": {"name": "tiny", "size": "tiny", "vocab_size": 300, "max_length": 64},
          "train": {"steps": 6, "batch_size": 8, "lr": 0.003, "warmup_steps": 2, "log_every": 2},
          "eval": {"mode": "score", "batch_size": 8, "n_boot": 100}, "seed": 0}
NO_SPACE = "no space left on device"


class FullFile:
    """A file that takes `room` writes, then fails like a full disk: the next write gets half of its
    text on disk (a torn line), then ENOSPC."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data: str) -> int:
        if self.room == 0:
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= 1
        return self.f.write(data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fill_disk_at(monkeypatch, name: str, room: int) -> None:
    """The run's writes of the file called `name` hit a full disk after `room` writes."""
    real_open = open

    def open_(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return FullFile(f, room) if Path(file).name == name and "w" in mode else f

    monkeypatch.setattr(runner, "open", open_, raising=False)


def no_tmp_files(out: Path) -> bool:
    return not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_while_writing_the_curve_names_the_folder_and_a_retry_resumes(tmp_path, monkeypatch):
    """The second curve line (step 4) hits the full disk half-written: the run fails after the step-3
    checkpoint; the retry drops the torn line, resumes from step 3 and writes a clean curve."""
    out = tmp_path / "run"
    fill_disk_at(monkeypatch, "metrics.jsonl", room=1)              # the step-2 line fits, step 4's is torn
    cfg = from_dict(RunConfig, CONFIG)
    with pytest.raises(WriteFailed) as failed:
        run(cfg, out, checkpoint_every=3)
    assert str(failed.value) == (f"{NO_SPACE} while writing the training curve to {out}: free space and retry "
                                 f"the run; the last good checkpoint (step 3) is intact")
    [kept] = candidates(out / "checkpoint")
    verify(kept)
    assert kept.step == 3 and no_tmp_files(out)
    monkeypatch.undo()
    summary = run(cfg, out, checkpoint_every=3)
    assert summary["resumed_from_step"] == 3 and summary["train_steps"] == 6
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]


@pytest.mark.parametrize("name, what", [("predictions.jsonl.tmp", "predictions"), ("summary.json.tmp", "summary")])
def test_a_full_disk_while_writing_the_results_keeps_the_last_checkpoint(tmp_path, monkeypatch, name, what):
    out = tmp_path / "run"
    fill_disk_at(monkeypatch, name, room=0)
    with pytest.raises(WriteFailed) as failed:
        run(from_dict(RunConfig, CONFIG), out, checkpoint_every=3)
    assert str(failed.value) == (f"{NO_SPACE} while writing the {what} to {out}: free space and retry the run; "
                                 f"the last good checkpoint (step 6) is intact")
    assert not (out / "summary.json").exists() and no_tmp_files(out)
    verify(candidates(out / "checkpoint")[0])


def test_a_full_disk_while_saving_the_model_is_seen_through_safetensors(tmp_path, monkeypatch):
    """safetensors reports a full disk as SafetensorError('... (os error 28)'): read as ENOSPC."""
    from safetensors import SafetensorError
    from transformers import PreTrainedModel

    def full(self, *args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    out = tmp_path / "run"
    with pytest.raises(WriteFailed) as failed:
        run(from_dict(RunConfig, CONFIG), out, checkpoint_every=3)
    assert str(failed.value) == (f"{NO_SPACE} while writing the model to {out / 'model'}: free space and retry "
                                 f"the run; the last good checkpoint (step 6) is intact")
    assert not (out / "summary.json").exists()


def test_cotdistill_run_on_a_full_disk_says_one_sentence(tmp_path, monkeypatch):
    from cotdistill.cli import science
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(CONFIG))
    out = tmp_path / "run"
    fill_disk_at(monkeypatch, "predictions.jsonl.tmp", room=0)
    result = CliRunner().invoke(science, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]                  # on its own line, after the bars
    assert last == (f"error: {NO_SPACE} while writing the predictions to {out}: free space and retry the run; "
                    f"the last good checkpoint (step 6) is intact")
    assert "Traceback" not in result.output


def test_a_failed_checkpoint_write_leaves_no_half_checkpoint(tmp_path, monkeypatch):
    """torch.save wraps the OSError in a RuntimeError: still one sentence; the checkpoint being written
    is removed, the one before stays (unit level: training.save_checkpoint)."""
    import torch
    from cotdistill.train import checkpoints
    from cotdistill.train.loop import save_checkpoint
    root = tmp_path / "run" / "checkpoint"
    root.parent.mkdir()
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    states = (model.state_dict(), opt.state_dict())
    save_checkpoint(root, states, sched, 5, 5)
    real_save = torch.save

    def torn_save(obj, f, *args, **kwargs):
        f.write(b"PK partial")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(WriteFailed) as failed:
        save_checkpoint(root, states, sched, 10, 10)
    assert str(failed.value) == (f"{NO_SPACE} while writing the checkpoint to {root}: free space and retry the "
                                 f"run; the last good checkpoint (step 5) is intact")
    assert [c.step for c in candidates(root)] == [5]
    monkeypatch.setattr(torch, "save", real_save)
    assert checkpoints.latest(root).step == 5

"""Multi-process training on CPU (torchrun, gloo): the same run as one process, and the refusals."""

import json
import subprocess
import sys

import pytest
import torch

from cotdistill.errors import ConfigError
from cotdistill.config import RunConfig, TrainConfig, load_config
from cotdistill.train.distributed import SINGLE, DDP, free_port
from cotdistill.errors import RunError
from cotdistill.run import run
from tests.worker.stack import ROOT


ENV = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}


def two_process_curves(tmp_path, families: list[str], *flags: str, both: tuple = ()) -> tuple[dict, dict]:
    """The 20-step loss curve, per family, of one process and of two (torchrun, gloo) on the same
    global batch; the families train one after the other in one launch. `both`: flags of both runs."""
    single, two = tmp_path / "single.json", tmp_path / "two.json"
    subprocess.run([sys.executable, "tests/ddp_rank.py", str(single), "--single", "--family", ",".join(families),
                    *both], cwd=ROOT, check=True, env=ENV, timeout=180)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
                           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "tests/ddp_rank.py",
                           str(two), "--family", ",".join(families), *flags, *both], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    a, b = json.loads(single.read_text()), json.loads(two.read_text())
    assert list(a) == list(b) == families
    return a, b


def test_ddp_on_two_processes_follows_the_single_process_loss_curve(tmp_path):
    """Same global batch (5 x 2 accumulation, including a one-row micro-batch), 20 steps, gloo."""
    single, two = two_process_curves(tmp_path, ["gpt2"])
    a, b = single["gpt2"], two["gpt2"]
    assert len(a) == len(b) == 20
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    assert a[-1] < a[0] - 0.5                          # it trained: the curve is not flat


@pytest.mark.parametrize("engine", ["ddp", "fsdp"])
def test_segment_normalisation_on_two_processes_follows_the_single_process_loss_curve(tmp_path, engine):
    """train.loss_normalization segment: each rank's per-example means, divided by the global batch's
    example count (a rank whose slice is empty counts none), give the single process's curve."""
    flags = ("--fsdp",) if engine == "fsdp" else ()
    single, two = two_process_curves(tmp_path, ["gpt2"], *flags, both=("--segment",))
    a, b = single["gpt2"], two["gpt2"]
    assert len(a) == len(b) == 20
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    assert a[-1] < a[0] - 0.5


def test_fsdp_on_two_processes_follows_the_single_process_loss_curve(tmp_path):
    """FSDP2 on gloo: every weight sharded (checked in the rank), the same curve as one process to 1e-4
    for each family (tied and untied heads, Gemma-2's scaled embeddings and soft-capped logits)."""
    single, two = two_process_curves(tmp_path, ["gpt2", "llama", "gemma2"], "--fsdp")
    for family in single:
        a, b = single[family], two[family]
        assert len(a) == len(b) == 20, family
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4, (family, a, b)
        assert a[-1] < a[0] - 0.3, family


def test_a_micro_batch_is_sliced_by_rank_and_an_empty_slice_gets_a_stand_in():
    rank1 = DDP.__new__(DDP)
    rank1.rank, rank1.world = 1, 2
    assert rank1.shard([10, 11, 12, 13, 14]) == ([11, 13], True)
    assert rank1.shard([10]) == ([10], False)          # weight zeroed by the loop: all ranks reduce
    assert SINGLE.shard([10]) == ([10], True)


def test_several_devices_need_ddp():
    with pytest.raises(ConfigError, match=r"^override 'train.devices=2': train.devices: 2 devices need "
                                          r"train.distributed: ddp or fsdp \(one process per device\)$"):
        load_config(None, ["train.devices=2"])
    with pytest.raises(ConfigError, match=r"^override 'train.distributed=zero': train.distributed: must be one of none, ddp, "
                                          r"fsdp, not 'zero'$"):
        load_config(None, ["train.distributed=zero"])
    assert RunConfig().hash("cpu") == RunConfig(train=TrainConfig(distributed="none", devices=1)).hash("cpu")
    assert RunConfig(train=TrainConfig(distributed="ddp", devices=2)).hash("cpu") != RunConfig().hash("cpu")


def test_fsdp_needs_a_block_class_to_shard_by():
    from cotdistill.train.distributed import FSDP, transformer_blocks
    from tests.helpers import tiny_model
    from tests.conftest import make_word_tokenizer
    model = tiny_model(make_word_tokenizer())
    assert [type(b).__name__ for b in transformer_blocks(model)] == ["GPT2Block", "GPT2Block"]
    model._no_split_modules = []
    rank = FSDP.__new__(FSDP)
    rank.rank, rank.world, rank.device = 0, 2, "cpu"
    with pytest.raises(RunError, match=r"^train.distributed=fsdp: GPT2LMHeadModel names no transformer block "
                                       r"class \(_no_split_modules\) to shard by; use train.distributed=ddp$"):
        rank.loss_fn(model)


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("engine", ["ddp", "fsdp+lora"])
def test_a_stopped_launch_ends_every_rank_and_resumes_exactly(tmp_path, monkeypatch, engine):
    """Cancel / hand-back of a torchrun job: poll() raises, the launcher and ranks end, the checkpoint
    stays; launched again, the run resumes and its curve and result equal an uninterrupted run's
    (dropout included: every rank's RNG state is restored). FSDP runs with LoRA: its checkpoint,
    resume and save go through the same gathered full-state code as a full FSDP fine-tune (which
    passed here too, 58 s, left out for CI time) plus the frozen base and the merge."""
    import os
    from cotdistill.config import from_dict
    from cotdistill.train.distributed import launch
    from tests.worker.stack import BASE, share_tokenizers
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    share_tokenizers(tmp_path)
    lora = {"lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["c_attn"]}} if "lora" in engine else {}
    cfg = from_dict(RunConfig, {**BASE, "student": {**BASE["student"], **lora},
                                "train": {**BASE["train"], "steps": 20, "log_every": 1,
                                          "distributed": engine.split("+")[0], "devices": 2},
                                "eval": {**BASE.get("eval", {}), "every": 10, "val_size": 8}})
    seen = []

    def poll():
        if seen and seen[-1].get("step", 0) >= 7:
            raise Cancelled()
    with pytest.raises(Cancelled):
        launch(cfg, tmp_path / "run", callback=seen.append, checkpoint_every=5, poll=poll)
    pids = [int(p.read_text()) for p in sorted((tmp_path / "run" / "dist").glob("rank*.pid"))]
    assert len(pids) == 2
    for pid in pids:                                   # gone (or a zombie of the ended launcher)
        stat = f"/proc/{pid}/stat"
        assert not os.path.exists(stat) or open(stat).read().split(") ")[1][0] == "Z"
    from cotdistill.train.checkpoints import candidates
    assert 5 <= candidates(tmp_path / "run" / "checkpoint")[0].step < 20

    resumed = launch(cfg, tmp_path / "run", checkpoint_every=5)
    whole = launch(cfg, tmp_path / "whole", checkpoint_every=5)
    curve = lambda run: [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").open()]  # noqa: E731
    assert resumed["resumed_from_step"] >= 5 and whole["resumed_from_step"] == 0
    assert len(curve("run")) == len(curve("whole")) == 20
    assert max(abs(a - b) for a, b in zip(curve("run"), curve("whole"))) < 1e-6
    assert resumed["accuracy"] == whole["accuracy"] and resumed["devices"] == 2
    assert resumed["lora_merged"] == bool(lora) and (resumed["trainable_parameters"] < resumed["parameters"]) == bool(lora)
    val = lambda run: [json.loads(line).get("val_accuracy") for line in (tmp_path / run / "metrics.jsonl").open()]  # noqa: E731
    assert [v for v in val("run") if v is not None] == [v for v in val("whole") if v is not None]
    assert len([v for v in val("whole") if v is not None]) == 2          # steps 10 and 20, by rank 0
    predictions = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == resumed["n"] == len({json.loads(p)["example_id"] for p in predictions})
    # the saved model is an ordinary one (FSDP: the gathered weights) and predicts what was evaluated
    from transformers import AutoModelForCausalLM
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert all(type(p).__name__ == "Parameter" for p in saved.parameters())
    whole_saved = AutoModelForCausalLM.from_pretrained(tmp_path / "whole" / "model")
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), whole_saved.state_dict().values()))


def test_a_superseded_launch_stops_its_ranks_before_their_next_write(tmp_path, monkeypatch):
    """One writer per run folder: a later attempt's launch takes `dist/owner`; the earlier launch's
    ranks (a paused worker's, still running) notice before their next write and stop without writing
    anything, not even an error file; the later launch finishes the run from the checkpoint."""
    from cotdistill.config import from_dict
    from cotdistill.train.distributed import OWNER, launch
    from cotdistill.errors import Superseded
    from tests.worker.stack import BASE, share_tokenizers
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    share_tokenizers(tmp_path)
    cfg = from_dict(RunConfig, {**BASE, "train": {**BASE["train"], "steps": 40, "log_every": 1,
                                                  "distributed": "ddp", "devices": 2}})
    out, seen, taken = tmp_path / "run", [], {}

    def poll():                                        # a new attempt takes the folder at step 7
        if not taken and seen and seen[-1].get("step", 0) >= 7:
            (out / "dist" / OWNER).write_text("a-later-attempt")
            taken["lines"] = len((out / "metrics.jsonl").read_text().splitlines())
    with pytest.raises(Superseded, match=r"^the 2-process run stopped: another attempt owns the run folder"):
        launch(cfg, out, callback=seen.append, checkpoint_every=5, poll=poll)
    assert taken and len((out / "metrics.jsonl").read_text().splitlines()) <= taken["lines"] + 1   # one in flight
    assert not (out / "summary.json").exists() and not (out / "predictions.jsonl").exists()
    assert not list((out / "dist").glob("error-*.txt")) and not list((out / "dist").glob("peer-*.txt"))
    finished = launch(cfg, out, checkpoint_every=5)    # the owner's launch resumes and finishes
    assert finished["resumed_from_step"] >= 5 and finished["train_steps"] == 40
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 40

"""Multi-process training on CPU (torchrun, gloo): the same run as one process, and the refusals."""

import json
import subprocess
import sys

import pytest

from cotdistill.config import ConfigError, RunConfig, TrainConfig, load_config
from cotdistill.distributed import SINGLE, DDP, free_port
from cotdistill.runner import RunError, run
from tests.worker.stack import ROOT


def test_ddp_on_two_processes_follows_the_single_process_loss_curve(tmp_path):
    """Same global batch (5 x 2 accumulation, including a one-row micro-batch), 20 steps, gloo."""
    single, two = tmp_path / "single.json", tmp_path / "two.json"
    subprocess.run([sys.executable, "tests/ddp_rank.py", str(single), "--single"], cwd=ROOT, check=True,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, timeout=120)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
                    "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "tests/ddp_rank.py",
                    str(two)], cwd=ROOT, check=True, capture_output=True, timeout=180,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    a, b = json.loads(single.read_text()), json.loads(two.read_text())
    assert len(a) == len(b) == 20
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    assert a[-1] < a[0] - 0.5                          # it trained: the curve is not flat


def test_a_micro_batch_is_sliced_by_rank_and_an_empty_slice_gets_a_stand_in():
    rank1 = DDP.__new__(DDP)
    rank1.rank, rank1.world = 1, 2
    assert rank1.shard([10, 11, 12, 13, 14]) == ([11, 13], True)
    assert rank1.shard([10]) == ([10], False)          # weight zeroed by the loop: all ranks reduce
    assert SINGLE.shard([10]) == ([10], True)


def test_several_devices_need_ddp():
    with pytest.raises(ConfigError, match=r"^override 'train.devices=2': train.devices: 2 devices need "
                                          r"train.distributed: ddp \(one process per device\)$"):
        load_config(None, ["train.devices=2"])
    with pytest.raises(ConfigError, match=r"^override 'train.distributed=zero': train.distributed: must be one of none, ddp, "
                                          r"fsdp, not 'zero'$"):
        load_config(None, ["train.distributed=zero"])
    assert RunConfig().hash("cpu") == RunConfig(train=TrainConfig(distributed="none", devices=1)).hash("cpu")
    assert RunConfig(train=TrainConfig(distributed="ddp", devices=2)).hash("cpu") != RunConfig().hash("cpu")


def test_fsdp_is_refused_on_cpu_before_any_work(tmp_path):
    cfg = load_config(None, ["train.distributed=fsdp", "train.devices=2"])
    with pytest.raises(RunError, match=r"^train.distributed=fsdp is not supported on CPU \(PyTorch's FSDP "
                                       r"needs CUDA devices here\): use train.distributed=ddp"):
        run(cfg, tmp_path / "run", device="cpu")
    assert not (tmp_path / "run").exists()


class Cancelled(Exception):
    pass


def test_a_stopped_launch_ends_every_rank_and_resumes_exactly(tmp_path, monkeypatch):
    """Cancel / hand-back of a torchrun job: poll() raises, the launcher and ranks end, the checkpoint
    stays; launched again, the run resumes and its curve and result equal an uninterrupted run's
    (dropout included: every rank's RNG state is restored)."""
    import os
    from cotdistill.config import from_dict
    from cotdistill.distributed import launch
    from tests.worker.stack import BASE, share_tokenizers
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    share_tokenizers(tmp_path)
    cfg = from_dict(RunConfig, {**BASE, "train": {**BASE["train"], "steps": 20, "log_every": 1,
                                                  "distributed": "ddp", "devices": 2}})
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
    from cotdistill.checkpoints import candidates
    assert 5 <= candidates(tmp_path / "run" / "checkpoint")[0].step < 20

    resumed = launch(cfg, tmp_path / "run", checkpoint_every=5)
    whole = launch(cfg, tmp_path / "whole", checkpoint_every=5)
    curve = lambda run: [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").open()]  # noqa: E731
    assert resumed["resumed_from_step"] >= 5 and whole["resumed_from_step"] == 0
    assert len(curve("run")) == len(curve("whole")) == 20
    assert max(abs(a - b) for a, b in zip(curve("run"), curve("whole"))) < 1e-6
    assert resumed["accuracy"] == whole["accuracy"] and resumed["devices"] == 2

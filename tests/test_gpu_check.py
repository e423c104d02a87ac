"""bench/gpu_check.sh runs end to end in its CPU smoke mode and prints its one table."""

import subprocess

from tests.worker.stack import ROOT


def test_gpu_check_smoke_mode_prints_the_table(tmp_path):
    out = subprocess.run(["bench/gpu_check.sh", "--cpu", "--tiny"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin", "COTDISTILL_HOME": str(tmp_path),
                                           "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout[out.stdout.index("device: CPU"):].splitlines()
    assert table[1].split()[:5] == ["shape", "what", "tokens/s", "MFU", "%"]
    rows = {line.split()[1]: line for line in table[2:]}        # ours, packed (and padded), Trainer, eval
    assert {"ours", "packed", "Trainer", "eval"} <= set(rows) and all(r.startswith("tiny ") for r in rows.values())
    ours = rows["ours"].split()
    assert float(ours[2]) > 0 and 0 < float(ours[3]) < 100
    assert "ours/Trainer" in rows["Trainer"] and "examples/s" in rows["eval"]

"""The presets the Launch page offers (cotdistill/studies/presets.py) and their config files under configs/: the
same runs either way, sized as documented."""

import pytest

from cotdistill.config import load_config
from cotdistill.studies.presets import PRESETS, preset_configs, preset_matrix
from tests.conftest import ROOT


@pytest.mark.parametrize("placement", ["none", "before", "after"])
def test_the_cpu_preset_and_its_config_files_are_the_same_runs(placement):
    from cotdistill.config import RunConfig, from_dict
    from_preset = from_dict(RunConfig, preset_configs("cqa-smollm2-cpu")[placement])
    from_file = load_config(ROOT / "configs" / f"cqa-{placement}-smollm2-cpu.yaml")
    assert from_file.hash("cpu") == from_preset.hash("cpu")
    assert from_file.eval.all_modes is False and from_file.eval.every == 0          # what makes it fit a CPU
    assert (from_file.data.n_test, from_file.train.steps, from_file.student.name) == (300, 100, "smollm2-135m")
    assert from_file.eval_mode == ("generate" if placement == "before" else "score")


def test_the_cpu_preset_matrix_file_expands_to_the_presets_cells():
    from worker.experiments import Matrix, expand, load_matrix
    m = preset_matrix("cqa-smollm2-cpu")
    preset = [cfg.hash("cpu") for _, cfg in expand(Matrix(m["name"], m["base"], m["factors"]))]
    from_file = [cfg.hash("cpu") for _, cfg in expand(load_matrix(ROOT / "configs" / "matrix-cqa-smollm2-cpu.yaml"))]
    assert len(preset) == 3 and sorted(preset) == sorted(from_file)
    assert m["name"] == "cqa-smollm2-cpu" and set(PRESETS["cqa-smollm2-cpu"]) == {"title", "shows", "expected", "matrix"}

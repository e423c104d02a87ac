"""The app talks to the system only through the jobs API and never loads a model (DESIGN.md)."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
FORBIDDEN = ("torch", "transformers", "sqlalchemy", "celery", "cotdistill")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_app_imports_only_the_jobs_api_of_the_system():
    for path in sorted(APP.rglob("*.py")):
        for name in imported_modules(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.relative_to(APP.parent)} imports {name}"
            if name.startswith("worker"):
                assert name == "worker.api", f"{path.relative_to(APP.parent)} imports {name}: use worker.api"


RENDER_EVERY_PAGE = """
import json, sys
from streamlit import config
from streamlit.testing.v1 import AppTest
config.set_option("server.address", "127.0.0.1")
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
errors = [e.value for e in at.exception]
for page in ["screens/runs.py", "screens/compare.py", "screens/examples.py", "screens/key_tokens.py",
             "screens/teacher.py", "screens/datasets.py"]:
    at.switch_page(page).run()
    errors += [e.value for e in at.exception]
print(json.dumps({"errors": errors, "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}))
"""


def test_rendering_every_page_loads_no_model_library(tmp_path):
    env = {**os.environ, "COTDISTILL_HOME": str(tmp_path)}
    env.pop("COTDISTILL_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", RENDER_EVERY_PAGE, str(APP / "main.py")], env=env, cwd=APP.parent,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"errors": [], "loaded": []}

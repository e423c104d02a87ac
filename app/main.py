"""The cotdistill web app: `cotdistill up` starts it on 127.0.0.1 with the workers, or
`streamlit run app/main.py --server.address 127.0.0.1`.

Seven screens, one file each under app/screens/: launch an experiment, watch its runs, compare its arms,
read test examples with every run's prediction, find the rationale's key tokens, have a teacher write
rationales, browse the datasets and rationale sets. Bound to any other address the app first asks for
$COTDISTILL_PASSWORD (app/auth.py). A database it cannot reach or write is one line on the screen, its
URL's password masked.

The screens' folder is not called `pages/` on purpose: Streamlit treats a `pages/` folder next to the
entry point as its older multipage mode and, until `st.navigation` has run once in the server process,
serves `/<page>` by running that file directly, without this script and its password gate.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:                     # `import app.…` works from any working directory
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from app.auth import require_password  # noqa: E402
from worker import api  # noqa: E402

st.set_page_config(page_title="cotdistill", page_icon=":material/science:", layout="wide")
require_password()

PAGES = [
    st.Page("screens/launch.py", title="Launch", icon=":material/rocket_launch:", default=True),
    st.Page("screens/runs.py", title="Runs", icon=":material/monitoring:", url_path="runs"),
    st.Page("screens/compare.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page("screens/examples.py", title="Examples", icon=":material/list_alt:", url_path="examples"),
    st.Page("screens/key_tokens.py", title="Key tokens", icon=":material/key:", url_path="key-tokens"),
    st.Page("screens/teacher.py", title="Teacher", icon=":material/school:", url_path="teacher"),
    st.Page("screens/datasets.py", title="Datasets", icon=":material/dataset:", url_path="datasets"),
]
try:
    st.navigation(PAGES).run()
except Exception as error:                   # a database it cannot use: one line, not a traceback
    if (problem := api.database_problem(error)) is None:
        raise
    st.error(problem)                                   # text: database_problem's own sentence

"""The cotdistill web app (Streamlit): `cotdistill up`, or `streamlit run app/main.py`.

Pages under app/screens/ describe the screens; the logic lives in the modules next to this file. The app
reaches the system only through the jobs API (worker/api/), by way of the cached reads in
app/queries.py. It never loads a model: what needs a tokenizer (the training-sequence preview) is
computed by a worker and arrives here as plain data.
"""

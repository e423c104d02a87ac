"""docker-compose.yml describes the cluster: it parses, and its wiring is what the README promises."""

import os
import re
import shutil
import subprocess

import yaml

from tests.worker.stack import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_parses_and_has_the_cluster():
    services = load()["services"]
    assert {"redis", "postgres", "app", "worker-gpu", "worker-cpu", "migrate"} <= set(services)
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert gpu["command"][:6] == ["cotdistill", "worker", "--queues", "gpu", "--gpus", "all"]
    assert gpu["build"]["args"]["TORCH_CUDA"].startswith("${TORCH_CUDA:-cu")     # the CUDA build of torch
    assert "ARG TORCH_CUDA=\"\"" in (ROOT / "Dockerfile").read_text()          # the CPU default stays
    for name in ("app", "worker-gpu", "worker-cpu", "migrate"):
        env = services[name]["environment"]
        assert env["COTDISTILL_BROKER_URL"].startswith("redis://redis:")
        assert env["COTDISTILL_DATABASE_URL"].startswith("postgresql+psycopg://")
    # The app is published on the host's loopback only, and needs a password inside the container.
    assert services["app"]["ports"] == ["127.0.0.1:8501:8501"]
    assert "COTDISTILL_PASSWORD" in services["app"]["environment"]


def test_every_secret_comes_from_the_environment():
    text = COMPOSE.read_text(encoding="utf-8")
    for key in ("POSTGRES_PASSWORD", "COTDISTILL_PASSWORD"):
        values = re.findall(rf"{key}: (.+)", text)
        assert values and all(v.strip().startswith("${" + key) for v in values), values
    assert re.search(r"postgresql\+psycopg://cotdistill:\$\{POSTGRES_PASSWORD", text)


def has_compose() -> bool:
    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


def test_compose_config_validates_when_docker_compose_is_present():
    """`docker compose config` is the authoritative check; where the compose plugin is missing (this
    machine has a docker CLI without it) the YAML checks above are what runs."""
    if not has_compose():
        assert load()["services"]
        return
    env = {"POSTGRES_PASSWORD": "x", "COTDISTILL_PASSWORD": "y", "PATH": os.environ["PATH"]}
    r = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr

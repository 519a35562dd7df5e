"""cluster.yaml (AWS) and cluster.local.yaml (on-premise) against Ray's own autoscaler validation,
offline: ``prepare_config`` merges the provider's defaults as ``ray up`` does, ``validate_config``
checks the result against Ray's JSON schema. That API is private, so the test pins the Ray version
the files were checked with (pyproject.toml pins it too)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FILES = ["cluster.yaml", "cluster.local.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def validated(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_the_ray_version_is_the_one_the_files_were_checked_with():
    import ray

    pin = re.search(r'"ray\[tune\]==([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert ray.__version__ == pin == "2.60.0"


@pytest.mark.parametrize("name", FILES)
def test_the_cluster_file_passes_rays_autoscaler_validation(name):
    prepared = validated(load(name))
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_the_validation_refuses_what_ray_up_would_refuse():
    bad = load("cluster.yaml")
    bad["available_node_types"]["gpu"]["min_workerz"] = 1  # a misspelt key
    with pytest.raises(Exception, match="min_workerz"):
        validated(bad)
    bad = load("cluster.yaml")
    bad["head_node_type"] = "nowhere"
    with pytest.raises(ValueError, match="head_node_type"):
        validated(bad)


def test_the_aws_cluster_has_a_cpu_head_and_an_autoscaling_gpu_group():
    cfg = load("cluster.yaml")
    nodes = cfg["available_node_types"]
    assert cfg["provider"]["type"] == "aws"
    assert nodes[cfg["head_node_type"]]["resources"].get("GPU", 0) == 0
    gpu = nodes["gpu"]
    assert gpu["resources"]["GPU"] >= 1 and gpu["min_workers"] == 0 < gpu["max_workers"]


@pytest.mark.parametrize("name", FILES)
def test_security_defaults_token_auth_dashboard_on_localhost_no_secrets(name):
    cfg = load(name)
    text = (ROOT / name).read_text()
    starts = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in text
    # the token is generated on the head node and handed to the workers by the cluster itself
    assert any("get-auth-token --generate" in c for c in cfg["head_setup_commands"])
    assert "~/.ray/auth_token" in cfg["cluster_synced_files"]
    for secret in ("RAY_AUTH_TOKEN=", "aws_secret_access_key", "AKIA", "BEGIN OPENSSH", "BEGIN RSA"):
        assert secret not in text


@pytest.mark.parametrize("name", FILES)
def test_the_nodes_install_the_project_as_the_makefile_does_from_the_mounted_code(name):
    cfg = load(name)
    assert cfg["file_mounts"] == {"~/natsflow": "."}
    setup = " && ".join(cfg["setup_commands"])
    makefile = (ROOT / "Makefile").read_text()
    # the Makefile's steps (a venv in .venv, pip upgraded, the project installed editable), with the
    # cluster extra (Ray's dashboard and job API) instead of the test extras
    assert "VENV   := .venv" in makefile and "-m venv $(VENV)" in makefile and "-m venv .venv" in setup
    for step in ("-m pip install -q --upgrade pip", "-m pip install -q -e "):
        assert step in makefile and step in setup
    assert "-m pip install -q -e '.[cluster]'" in setup

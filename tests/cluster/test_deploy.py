"""The shipped deploy manifests parse, validate against Ray's own cluster schema, and launch a valid viva command."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jsonschema
import ray
import yaml

from viva.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_ray_up_yaml_is_a_valid_cluster_config():
    cfg = yaml.safe_load((DEPLOY / "ray-up.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(cfg, schema)  # what `ray up` checks first
    assert cfg["cluster_name"] == "viva-grpo"
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert types["head"]["resources"]["GPU"] == 0
    assert types["gpu_worker"]["resources"]["GPU"] >= 1
    assert any("pip install" in c and "viva" in c for c in cfg["setup_commands"])
    assert ray.__version__ in cfg["docker"]["image"]  # the image's Ray must match viva's pin


def test_kuberay_rayjob_runs_viva_grpo_attached():
    job = yaml.safe_load((DEPLOY / "kuberay-rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["viva", "grpo"] and "cluster.address=auto" in argv
    overrides = [a for a in argv[2:] if "=" in a]
    cfg = load_config(None, overrides, recipe="grpo")  # every override names a real config key
    assert cfg.cluster.address == "auto"
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] == "ray-head"
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert int(worker["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["HF_HUB_OFFLINE"] == "1"

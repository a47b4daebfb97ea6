"""Every file in cluster/ checked by the real tool that reads it, where one exists here:

- `ray up` configs: Ray's own preparation (defaults of the provider merged in) and its cluster-config schema
  (ray/autoscaler/ray-schema.json), as `ray up` does before it starts any machine;
- KubeRay RayCluster / RayJob: Ray's own reading of a RayCluster spec (what the autoscaler derives from the
  custom resource: node types, CPUs, GPUs, memory) and each pod template against the Kubernetes PodTemplate
  schema (kubernetes-validate, strict: unknown fields are errors); the RayJob's runtimeEnvYAML through
  Ray's RuntimeEnv and its entrypoint through the category module's own command line;
- the runtime environment spec through Ray's RuntimeEnv; accelerate configs through accelerate's loader.

Not run here: `ray up` itself (no cloud account or second machine), `kubectl apply` (no Kubernetes), and
KubeRay's CRD schemas (not shipped in any package available here); the field names of the KubeRay custom
resources are checked against the v1 API's lists below.
"""

from __future__ import annotations

import copy
import importlib
import re
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.runtime_env import RuntimeEnv

from pipelines.cli import run_command

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
K8S_VERSION = kubernetes_validate.utils.latest_version()
# ray.io/v1 fields (KubeRay v1.x API types) that a manifest here may use
RAYCLUSTER_SPEC = {
    "rayVersion",
    "enableInTreeAutoscaling",
    "autoscalerOptions",
    "headGroupSpec",
    "workerGroupSpecs",
    "headServiceAnnotations",
    "suspend",
    "managedBy",
    "gcsFaultToleranceOptions",
}
HEAD_GROUP = {
    "rayStartParams",
    "template",
    "serviceType",
    "enableIngress",
    "headService",
    "resources",
    "labels",
}
WORKER_GROUP = {
    "groupName",
    "replicas",
    "minReplicas",
    "maxReplicas",
    "rayStartParams",
    "template",
    "numOfHosts",
    "idleTimeoutSeconds",
    "scaleStrategy",
    "suspend",
    "resources",
    "labels",
}
RAYJOB_SPEC = {
    "entrypoint",
    "runtimeEnvYAML",
    "shutdownAfterJobFinishes",
    "ttlSecondsAfterFinished",
    "rayClusterSpec",
    "clusterSelector",
    "submissionMode",
    "submitterPodTemplate",
    "submitterConfig",
    "activeDeadlineSeconds",
    "backoffLimit",
    "suspend",
    "jobId",
    "metadata",
    "entrypointNumCpus",
    "entrypointNumGpus",
    "entrypointResources",
    "managedBy",
    "deletionStrategy",
}


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def check_entrypoint(command: str) -> None:
    """`python -m pipelines.<task> ARGS`: the module exists and its command line accepts ARGS."""
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"], command
    module = importlib.import_module(words[2])
    task = words[2].rsplit(".", 1)[-1]
    assert module.__name__ == f"pipelines.{task}"
    context = run_command.make_context("run", [task, *words[3:]])
    assert context.params["task"] == task and context.params["source"] and context.params["out"]


def check_ray_cluster_spec(spec: dict, metadata: dict) -> dict:
    assert set(spec) <= RAYCLUSTER_SPEC, set(spec) - RAYCLUSTER_SPEC
    assert set(spec["headGroupSpec"]) <= HEAD_GROUP
    for group in spec["workerGroupSpecs"]:
        assert set(group) <= WORKER_GROUP, set(group) - WORKER_GROUP
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}}
        kubernetes_validate.validate(
            {**pod_template, "template": group["template"]}, K8S_VERSION, strict=True
        )
    return _derive_autoscaling_config_from_ray_cr({"metadata": metadata, "spec": spec})


@pytest.mark.parametrize("name", ["ray/aws.yaml", "ray/cluster.yaml"])
def test_ray_up_configs(name: str) -> None:
    prepared = prepare_config(copy.deepcopy(load(name)))
    validate_config(prepared)
    if name == "ray/aws.yaml":
        types = prepared["available_node_types"]
        assert set(types) == {"head", "cpu_worker", "gpu_worker"}
        assert types["head"]["resources"] == {"CPU": 0}  # the driver's node runs no tasks
        assert "g6e" in types["gpu_worker"]["node_config"]["InstanceType"]
    assert any("make setup" in command for command in prepared["setup_commands"])  # the project, on each node


def test_the_ray_schema_rejects_a_wrong_config() -> None:
    """The check above can fail: a misspelt field is refused by the same schema."""
    config = prepare_config(copy.deepcopy(load("ray/aws.yaml")))
    config["available_node_types"]["cpu_worker"]["max_worker"] = 4
    with pytest.raises(jsonschema.ValidationError):
        validate_config(config)


def test_kuberay_raycluster() -> None:
    manifest = load("ray/raycluster.yaml")
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayCluster")
    autoscaling = check_ray_cluster_spec(manifest["spec"], manifest["metadata"])
    types = autoscaling["available_node_types"]
    assert types["headgroup"]["resources"]["CPU"] == 0
    assert types["cpu"]["resources"]["CPU"] == 16 and "GPU" not in types["cpu"]["resources"]
    assert types["gpu"]["resources"]["GPU"] == 1 and types["gpu"]["max_workers"] == 8


def test_kuberay_rayjob_runs_a_category() -> None:
    manifest = load("ray/rayjob.yaml")
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    spec = manifest["spec"]
    assert set(spec) <= RAYJOB_SPEC, set(spec) - RAYJOB_SPEC
    check_entrypoint(spec["entrypoint"])
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(runtime_env) <= RuntimeEnv.known_fields
    RuntimeEnv(**runtime_env)
    types = check_ray_cluster_spec(spec["rayClusterSpec"], manifest["metadata"])["available_node_types"]
    assert types["gpu"]["resources"]["GPU"] == 1


def test_a_wrong_pod_template_is_refused() -> None:
    spec = copy.deepcopy(load("ray/raycluster.yaml")["spec"])
    spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resource"] = {}  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        check_ray_cluster_spec(spec, {"name": "x", "namespace": "default"})


def test_runtime_env_and_the_documented_submissions() -> None:
    spec = load("ray/runtime_env.yaml")
    # RuntimeEnv takes an unknown field for a plugin's: check the names against Ray's own list first
    assert set(spec) <= RuntimeEnv.known_fields, set(spec) - RuntimeEnv.known_fields
    runtime_env = RuntimeEnv(**spec)
    assert runtime_env["working_dir"] == "." and ".venv/" in runtime_env["excludes"]
    # every `python -m pipelines...` command shown in cluster/ and the README parses as its module would
    texts = [p.read_text() for p in CLUSTER.rglob("*") if p.is_file()]
    texts.append((CLUSTER.parent / "README.md").read_text())
    commands = []
    for text in texts:
        # a command: the module and its arguments, up to the end of the line, a comment or a backtick
        for match in re.finditer(r"python -m pipelines\.\w+(?: +[^\s`#]+)*", text.replace("\\\n", " ")):
            if " --" in match.group():  # not a mention of the module in prose
                commands.append(match.group())
    assert len(commands) >= 4
    for command in commands:
        check_entrypoint(command)


@pytest.mark.parametrize("name", sorted(p.name for p in (CLUSTER / "accelerate").glob("*.yaml")))
def test_accelerate_configs(name: str) -> None:
    config = load_config_from_file(str(CLUSTER / "accelerate" / name))
    assert config.mixed_precision == "bf16"
    assert config.num_processes >= 2 * config.num_machines  # more than one GPU per machine
    if config.fsdp_config:
        from diffusers.models.transformers import transformer_flux

        for block in config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(","):
            assert hasattr(transformer_flux, block), block  # the class FSDP wraps exists in diffusers

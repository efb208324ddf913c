"""The Kubernetes manifests (deploy/kubernetes): valid for a current Kubernetes (strict, with
kubernetes-validate), a kustomization whose every file exists, and a Deployment that agrees
with the configuration it mounts: ports, probes, the config path, the stop timings, the
secrets the configuration names."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES = kubernetes_validate.latest_version()
KINDS = {"Secret", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    return loaded


def resources() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"]
            for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def of_kind(kind: str, name: str) -> dict[str, Any]:
    [found] = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def gateway_container() -> dict[str, Any]:
    pod: dict[str, Any] = of_kind("Deployment", "gateway")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return dict(container)


def test_the_kustomization_names_files_that_exist() -> None:
    k = kustomization()
    for name in k["resources"]:
        assert (DEPLOY / name).is_file(), name
    for generator in k["configMapGenerator"]:
        for name in generator["files"]:
            assert (DEPLOY / name).is_file(), name
    assert {r["kind"] for r in resources()} >= KINDS


@pytest.mark.parametrize("resource", resources(), ids=lambda r: f"{r['kind']}/"
                         f"{r['metadata']['name']}")
def test_every_manifest_is_valid_for_a_current_kubernetes(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES, strict=True)


def test_an_invalid_manifest_is_refused() -> None:
    """The check can fail: a misspelt key and a wrong type are both refused."""
    deployment = of_kind("Deployment", "gateway")
    deployment["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)
    service = of_kind("Service", "gateway")
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES, strict=True)


def test_the_deployment_agrees_with_the_configuration_it_mounts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    container = gateway_container()
    secret = of_kind("Secret", "gateway-secrets")["stringData"]
    # The configuration loads with the Secret's variables set (real values: the placeholders
    # shipped are refused, below).
    for name in secret:
        monkeypatch.setenv(name, f"q3J7vR0s-bN1xW8eYt2-{name.lower()}")
    config = load_config(DEPLOY / "gateway.toml")
    raw = tomllib.loads((DEPLOY / "gateway.toml").read_text())
    named = {raw["server"]["cursor_secret_env"],
             *(source["token_env"] for source in raw["sources"])}
    assert named == set(secret)
    assert container["envFrom"] == [{"secretRef": {"name": "gateway-secrets"}}]
    # The mounted file is the one `serve` reads.
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "config"]
    config_path = container["args"][container["args"].index("--config") + 1]
    assert config_path == f"{mount['mountPath']}/gateway.toml"
    # Ports and probes.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": config.server.port, "metrics": config.metrics.port}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Stopping: the preStop wait, the drain and the grace all fit in the pod's grace period.
    wait = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    pod = of_kind("Deployment", "gateway")["spec"]["template"]["spec"]
    assert wait >= config.server.drain_seconds
    assert pod["terminationGracePeriodSeconds"] > (
        wait + config.server.drain_seconds + config.server.grace_seconds)
    # The cache is the redis Service.
    redis = of_kind("Service", "redis")["metadata"]["name"]
    assert config.cache.url.startswith(f"redis://{redis}:")


def test_the_shipped_secret_values_are_refused_until_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in of_kind("Secret", "gateway-secrets")["stringData"].items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Exception, match="placeholder"):
        load_config(DEPLOY / "gateway.toml")

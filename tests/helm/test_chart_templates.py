"""The chart as rendered by the pinned helm: lint, RBAC scope, the Deployment, values, the schema.

These tests start no server, but they need the pinned helm that scripts/build-components
builds with the control plane's binaries, so they carry the `cluster` marker.
"""

from __future__ import annotations

import json

import pytest

from tests.helm.helm_cli import CHART_DIR, Helm, HelmError, container_env, find_object, set_values

pytestmark = pytest.mark.cluster

RELEASE_NAMESPACE = "lora-system"
SCHEMA_ERROR = "values don't meet the specifications of the schema"


LEADER_ELECTION_SUFFIX = "-leader-election"


def kinds(objects: list[dict]) -> list[str]:
    return sorted(item["kind"] for item in objects)


def training_rbac(objects: list[dict]) -> list[dict]:
    """The objects without the Role and RoleBinding of the leader-election Lease."""
    return [item for item in objects if not item["metadata"]["name"].endswith(LEADER_ELECTION_SUFFIX)]


def rbac_rules(objects: list[dict]) -> list[dict]:
    return [rule for item in objects if item["kind"] in ("Role", "ClusterRole") for rule in item["rules"]]


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watch.clusterWide": "true", "notion.tokenSecret": "notion-token"},
        {"metrics.serviceMonitor.enabled": "true", "image.digest": "sha256:" + "a" * 64},
    ],
    ids=["defaults", "cluster-wide", "service-monitor"],
)
def test_chart_lints_clean(helm: Helm, values: dict[str, str]) -> None:
    result = helm.run("lint", "--strict", str(CHART_DIR), *set_values(values))

    assert "0 chart(s) failed" in result.stdout


def test_default_rbac_is_namespaced(helm: Helm) -> None:
    objects = training_rbac(helm.template(namespace=RELEASE_NAMESPACE))

    assert "ClusterRole" not in kinds(objects)
    assert "ClusterRoleBinding" not in kinds(objects)
    role = find_object(objects, "Role", namespace=RELEASE_NAMESPACE)
    binding = find_object(objects, "RoleBinding", namespace=RELEASE_NAMESPACE)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    environment = container_env(find_object(objects, "Deployment"))
    assert environment["LORA_OPERATOR_NAMESPACES"]["value"] == RELEASE_NAMESPACE


def test_watched_namespaces_get_roles(helm: Helm) -> None:
    objects = training_rbac(helm.template("--set", "watch.namespaces={team-a,team-b}", namespace=RELEASE_NAMESPACE))

    role_namespaces = sorted(item["metadata"]["namespace"] for item in objects if item["kind"] == "Role")
    assert role_namespaces == ["team-a", "team-b"]
    binding = find_object(objects, "RoleBinding", namespace="team-a")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "lora-lora-operator", "namespace": RELEASE_NAMESPACE}
    ]
    environment = container_env(find_object(objects, "Deployment"))
    assert environment["LORA_OPERATOR_NAMESPACES"]["value"] == "team-a,team-b"


def test_cluster_wide_only_when_asked(helm: Helm) -> None:
    objects = training_rbac(helm.template("--set", "watch.clusterWide=true", namespace=RELEASE_NAMESPACE))

    assert "Role" not in kinds(objects)
    assert "RoleBinding" not in kinds(objects)
    binding = find_object(objects, "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == RELEASE_NAMESPACE
    environment = container_env(find_object(objects, "Deployment"))
    assert environment["LORA_OPERATOR_NAMESPACES"]["value"] == ""


@pytest.mark.parametrize("scope", [[], ["--set", "watch.clusterWide=true"]], ids=["namespaced", "cluster-wide"])
def test_secrets_readable_only_by_name(helm: Helm, scope: list[str]) -> None:
    objects = helm.template(*scope, "--set", "notion.tokenSecret=notion-token")

    secret_rules = [rule for rule in rbac_rules(objects) if "secrets" in rule["resources"]]
    assert len(secret_rules) == 1
    assert secret_rules[0]["verbs"] == ["get"]
    assert secret_rules[0]["resourceNames"] == ["lora-s3-credentials", "notion-token"]


def test_rbac_has_no_wildcards(helm: Helm) -> None:
    objects = helm.template("--set", "watch.clusterWide=true", "--set", "notion.tokenSecret=notion-token")

    for rule in rbac_rules(objects):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {field} of {rule}"


def test_rbac_grants_operator_verbs(helm: Helm) -> None:
    rules = rbac_rules(helm.template())

    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    for resource in ("loratrainings", "notionsources"):
        for verb in ("get", "list", "watch", "patch"):
            assert ("lora-operator.io", resource, verb) in granted
        assert ("lora-operator.io", f"{resource}/status", "patch") in granted
    for verb in ("get", "list", "watch", "create", "delete"):
        assert ("batch", "jobs", verb) in granted
    assert ("", "configmaps", "create") in granted
    assert ("", "events", "create") in granted
    assert ("", "pods", "watch") in granted
    assert ("", "secrets", "list") not in granted
    assert ("lora-operator.io", "loratrainings", "create") not in granted


def test_notion_adds_training_create(helm: Helm) -> None:
    rules = rbac_rules(helm.template("--set", "notion.tokenSecret=notion-token"))

    creates = [rule for rule in rules if "loratrainings" in rule["resources"] and "create" in rule["verbs"]]
    assert len(creates) == 1


def test_deployment_runs_one_operator(helm: Helm) -> None:
    deployment = find_object(helm.template(), "Deployment")

    assert deployment["spec"]["replicas"] == 1
    # With leader election the new pod of an update waits for the Lease, so it may start early.
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert container["resources"]["limits"] == {"memory": "512Mi"}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert "--health-port=8081" in container["args"]


def test_leader_election_lease_role(helm: Helm) -> None:
    objects = helm.template("--set", "operator.replicas=2", namespace=RELEASE_NAMESPACE)

    role = next(item for item in objects if item["kind"] == "Role" and item["metadata"]["name"].endswith(LEADER_ELECTION_SUFFIX))
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]
    deployment = find_object(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    environment = container_env(deployment)
    assert environment["LORA_OPERATOR_LEADER_ELECTION"]["value"] == "true"
    assert environment["LORA_OPERATOR_LEADER_ELECTION_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_without_leader_election_one_replica(helm: Helm) -> None:
    objects = helm.template("--set", "operator.leaderElection=false")

    assert not [item for item in objects if item["metadata"]["name"].endswith(LEADER_ELECTION_SUFFIX)]
    assert find_object(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(HelmError) as raised:
        helm.template("--set", "operator.leaderElection=false", "--set", "operator.replicas=2")
    assert "operator.replicas > 1 needs operator.leaderElection=true" in str(raised.value)


def test_operator_pod_restricted_context(helm: Helm) -> None:
    pod = find_object(helm.template(), "Deployment")["spec"]["template"]["spec"]

    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_values_reach_operator_environment(helm: Helm) -> None:
    values = {
        "trainer.image.repository": "registry.example/lora-trainer",
        "trainer.image.tag": "1.2.3",
        "trainer.gpuResourceName": "nvidia.com/mig-1g.10gb",
        "trainer.nodeSelector.gpu-pool": "a100",
        "trainer.tolerations[0].key": "nvidia.com/gpu",
        "trainer.tolerations[0].operator": "Exists",
        "trainer.tolerations[0].effect": "NoSchedule",
        "trainer.queueName": "team-queue",
        "s3.endpoint": "minio.storage:9000",
        "s3.secure": "false",
        "s3.bucket": "lora-runs",
        "notion.tokenSecret": "notion-token",
    }
    environment = container_env(find_object(helm.template(*set_values(values)), "Deployment"))

    def value(name: str) -> str:
        return environment[name]["value"]

    assert value("LORA_OPERATOR_TRAINER_IMAGE") == "registry.example/lora-trainer:1.2.3"
    assert value("LORA_OPERATOR_DEFAULT_GPU_RESOURCE_NAME") == "nvidia.com/mig-1g.10gb"
    assert json.loads(value("LORA_OPERATOR_DEFAULT_NODE_SELECTOR")) == {"gpu-pool": "a100"}
    assert json.loads(value("LORA_OPERATOR_DEFAULT_TOLERATIONS")) == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert value("LORA_OPERATOR_DEFAULT_QUEUE_NAME") == "team-queue"
    assert value("LORA_OPERATOR_S3_ENDPOINT") == "minio.storage:9000"
    assert value("LORA_OPERATOR_S3_SECURE") == "false"
    assert value("LORA_OPERATOR_S3_BUCKET") == "lora-runs"
    assert value("LORA_OPERATOR_NOTION_TOKEN_SECRET") == "notion-token"


def test_image_tag_defaults_to_app_version(helm: Helm) -> None:
    deployment = find_object(helm.template(), "Deployment")

    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/lora-operator:0.1.0")
    assert container_env(deployment)["LORA_OPERATOR_TRAINER_IMAGE"]["value"].endswith("/lora-trainer:0.1.0")


def test_image_digest_pins_image(helm: Helm) -> None:
    digest = "sha256:" + "b" * 64
    deployment = find_object(helm.template("--set", f"image.digest={digest}"), "Deployment")

    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":0.1.0@{digest}")


def test_credentials_come_from_secret(helm: Helm) -> None:
    environment = container_env(find_object(helm.template("--set", "s3.credentialsSecret=my-s3"), "Deployment"))

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert environment[key]["valueFrom"]["secretKeyRef"] == {"name": "my-s3", "key": key}
        assert "value" not in environment[key]


def test_metrics_service_selects_operator(helm: Helm) -> None:
    objects = helm.template()

    service = find_object(objects, "Service")
    pod_labels = find_object(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_service_monitor_optional(helm: Helm) -> None:
    assert "ServiceMonitor" not in kinds(helm.template())

    monitor = find_object(helm.template("--set", "metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_notes_show_first_training(helm: Helm) -> None:
    result = helm.run("install", "lora", str(CHART_DIR), "--namespace", "team-a", "--dry-run=client")

    notes = result.stdout.partition("NOTES:")[2]
    assert "kind: LoRATraining" in notes
    assert "kubectl --namespace team-a apply -f -" in notes
    assert "create secret generic lora-s3-credentials" in notes


# (values, what the error must name)
INVALID_VALUES = [
    ({"s3.secure": "maybe"}, "/s3/secure"),
    ({"s3.endpoint": "https://minio:9000"}, "/s3/endpoint"),
    ({"s3.bucket": "Bad_Bucket"}, "/s3/bucket"),
    ({"s3.credentialsSecret": ""}, "/s3/credentialsSecret"),
    ({"trainer.gpuResourceName": "gpu"}, "/trainer/gpuResourceName"),
    ({"trainer.stopGraceSeconds": "1"}, "/trainer/stopGraceSeconds"),
    ({"trainer.scratchSizeLimit": "lots"}, "/trainer/scratchSizeLimit"),
    ({"trainer.tolerations[0].operator": "Maybe"}, "/trainer/tolerations/0/operator"),
    ({"operator.workers": "0"}, "/operator/workers"),
    ({"operator.logLevel": "LOUD"}, "/operator/logLevel"),
    ({"image.digest": "latest"}, "/image/digest"),
    ({"watch.namespaces[0]": "Team_A"}, "/watch/namespaces/0"),
    ({"watch.clusterWide": "true", "watch.namespaces[0]": "team-a"}, "/watch/namespaces"),
    ({"metrics.serviceMonitor.interval": "often"}, "/metrics/serviceMonitor/interval"),
    ({"replicas": "2"}, "additional properties 'replicas' not allowed"),
    ({"s3.bukcet": "runs"}, "additional properties 'bukcet' not allowed"),
]


@pytest.mark.parametrize(("values", "named"), INVALID_VALUES, ids=[item[1] for item in INVALID_VALUES])
def test_schema_rejects_invalid_values(helm: Helm, values: dict[str, str], named: str) -> None:
    with pytest.raises(HelmError) as raised:
        helm.template(*set_values(values))

    assert SCHEMA_ERROR in str(raised.value)
    assert named in str(raised.value)

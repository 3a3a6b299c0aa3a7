"""The attempt Job carries everything the cluster needs: identity, retries, GPUs and a restricted pod."""

import pytest
import yaml

from lora_operator.api.training import AttemptOverrides
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.jobs.naming import job_name
from lora_operator.jobs.render import TrainingRef, render_config_map, render_job, run_uri, trainer_config
from lora_operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

REF = TrainingRef(namespace="team-a", name="style", uid="0b6f3c1e-uid")


def make_spec(**overrides):
    document = {"baseModel": "builtin://tiny-sd", "dataset": {"sources": [{"uri": "s3://data/photos"}]}}
    document.update(overrides)
    return LoRATrainingSpec.model_validate(document)


def render(spec=None, **settings):
    spec = spec or make_spec()
    return render_job(REF, spec, attempt=2, settings=OperatorSettings(**settings))


def test_job_name_is_deterministic():
    assert render()["metadata"]["name"] == "style-attempt-2"
    assert job_name("style", 2) == "style-attempt-2"


def test_long_names_fit_label_limit():
    name = "a" * 200
    assert len(job_name(name, 10)) <= 63
    assert job_name(name, 1) != job_name("a" * 199, 1)


def test_owner_reference_points_at_training():
    owner = render()["metadata"]["ownerReferences"][0]
    assert owner["uid"] == REF.uid
    assert owner["controller"] is True
    assert owner["kind"] == "LoRATraining"


def test_pod_failure_policy_rules():
    rules = render()["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["values"] == [42]
    assert rules[1] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[2]["action"] == "Ignore"
    assert rules[2]["onExitCodes"]["values"] == [143]


def test_deadline_and_ttl():
    job = render(make_spec(activeDeadlineSeconds=3600), job_ttl_seconds=600)
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_gpu_request_uses_resource_name():
    spec = make_spec(resources={"gpus": 1, "gpuResourceName": "nvidia.com/mig-1g.10gb"})
    resources = render(spec)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert resources["requests"]["nvidia.com/mig-1g.10gb"] == "1"
    assert "nvidia.com/gpu" not in resources["limits"]


def test_scheduling_fields_reach_pod():
    spec = make_spec(resources={
        "nodeSelector": {"gpu": "h100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "training",
    })
    pod = render(spec)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu": "h100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "training"


def test_kueue_label_only_with_queue():
    assert "kueue.x-k8s.io/queue-name" not in render()["metadata"]["labels"]
    job = render(make_spec(queueName="gpu-queue"))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert "suspend" not in job["spec"]


def test_pod_is_restricted():
    pod = render()["spec"]["template"]["spec"]
    container = pod["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}


def test_credentials_come_from_secret():
    env = render(s3_credentials_secret="my-s3")["spec"]["template"]["spec"]["containers"][0]["env"]
    secret_keys = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in env if "valueFrom" in item}
    assert secret_keys["AWS_ACCESS_KEY_ID"] == {"name": "my-s3", "key": "AWS_ACCESS_KEY_ID"}
    assert secret_keys["AWS_SECRET_ACCESS_KEY"] == {"name": "my-s3", "key": "AWS_SECRET_ACCESS_KEY"}


def test_multi_gpu_starts_one_process_per_gpu():
    command = render(make_spec(resources={"gpus": 4}))["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[0] == "lora-train"
    assert command[-2:] == ["--processes", "4"]


def test_single_gpu_runs_one_process():
    command = render(make_spec(resources={"gpus": 1}))["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--processes" not in command


def test_config_map_holds_overridden_config():
    settings = OperatorSettings(s3_endpoint="s3.local:9000", s3_bucket="runs")
    config = trainer_config(REF, make_spec(), attempt=3, overrides=AttemptOverrides(batch_size=2, gradient_accumulation=2),
                            settings=settings)
    config_map = render_config_map(REF, config)
    stored = yaml.safe_load(config_map["data"]["config.yaml"])
    assert config_map["immutable"] is True
    assert stored["spec"]["training"]["batchSize"] == 2
    assert stored["spec"]["training"]["gradientAccumulation"] == 2
    assert stored["run"]["attempt"] == 3
    assert stored["output"]["uri"] == "s3://runs/team-a/style/0b6f3c1e-uid"
    assert "AWS" not in config_map["data"]["config.yaml"]


def test_run_uri_uses_spec_bucket_and_prefix():
    spec = make_spec(output={"bucket": "mine", "prefix": "/loras/"})
    assert run_uri(REF, spec, OperatorSettings()) == "s3://mine/loras/team-a/style/0b6f3c1e-uid"


def test_installation_defaults_apply():
    settings = OperatorSettings(
        default_gpu_resource_name="nvidia.com/mig-2g.20gb",
        default_node_selector={"pool": "gpu"},
        default_tolerations=[{"key": "gpu", "operator": "Exists"}],
        default_queue_name="team-queue",
    )
    job = render_job(REF, make_spec(resources={"nodeSelector": {"zone": "a"}}), attempt=1, settings=settings)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/mig-2g.20gb"] == "1"
    assert pod["nodeSelector"] == {"pool": "gpu", "zone": "a"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-queue"


def test_defaults_read_from_environment(monkeypatch):
    monkeypatch.setenv("LORA_OPERATOR_DEFAULT_NODE_SELECTOR", '{"pool": "gpu"}')
    monkeypatch.setenv("LORA_OPERATOR_DEFAULT_TOLERATIONS", '[{"key": "gpu", "operator": "Exists"}]')
    settings = OperatorSettings()
    assert settings.default_node_selector == {"pool": "gpu"}
    assert settings.default_tolerations == [{"key": "gpu", "operator": "Exists"}]

"""The images and their commands, checked without a Docker engine.

`make docker-*` renders its `docker` commands in docker/run.py; `DRY_RUN=1` prints them.
These tests hold those commands to the contract (GPUs, mounts, env passthrough, non-root),
the Dockerfiles to theirs (digest-pinned base, hash-locked install, labels, no secrets), the
workflows to theirs, and a run inside an image to naming that image in its record.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from semillero.config.compose import compose, validate
from semillero.records import find_records
from semillero.report import build
from tests.conftest import REPO
from tests.helpers.runs import run_tiny

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("WANDB_API_KEY", "HF_TOKEN")


def load_runner():
    spec = importlib.util.spec_from_file_location("docker_run", ROOT / "docker" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


docker_run = load_runner()


def make_dry_run(target: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The command `make <target> DRY_RUN=1` prints, split as the shell would."""
    out = subprocess.run(
        ["make", "--no-print-directory", target, "DRY_RUN=1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    lines = [line[2:] for line in out.splitlines() if line.startswith("$ ")]
    assert len(lines) == 1, out
    return shlex.split(lines[0])


def option_values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg == flag]


def test_docker_sweep_renders_the_run_command() -> None:
    env = {**os.environ, "WANDB_API_KEY": "sk-secret-value", "HF_TOKEN": "hf_secret"}
    cmd = make_dry_run("docker-sweep", "EXP=iberotales_grpo", "SCALE=full", env=env)
    assert cmd[:2] == ["docker", "run"]
    assert option_values(cmd, "--gpus") == ["all"]
    mounts = option_values(cmd, "-v")
    assert f"{ROOT}/conf:/workspace/conf:ro" in mounts  # a config change needs no rebuild
    assert f"{ROOT}/outputs:/workspace/outputs" in mounts
    assert "semillero-cache:/cache" in mounts
    passed = option_values(cmd, "-e")
    assert set(SECRETS) <= set(passed)  # by name: docker copies the value at run time
    assert "sk-secret-value" not in " ".join(cmd) and "hf_secret" not in " ".join(cmd)
    (user,) = option_values(cmd, "--user")
    assert not user.startswith("0:") and user != "0"
    image_at = cmd.index("semillero:dev")
    assert cmd[image_at + 1 :][:4] == ["semillero", "sweep", "EXP=iberotales_grpo", "SCALE=full"]


def test_docker_targets_take_gpus_and_image() -> None:
    cmd = make_dry_run("docker-smoke", "GPUS=0,1", "IMAGE=ghcr.io/acme/semillero:v1")
    assert option_values(cmd, "--gpus") == ['"device=0,1"']  # docker parses --gpus as CSV
    assert "ghcr.io/acme/semillero:v1" in cmd
    assert "WANDB_MODE=offline" in option_values(cmd, "-e")  # the smoke never logs online
    tests = make_dry_run("docker-test-gpu")
    assert tests[tests.index("semillero:dev") + 1 :][:3] == ["pytest", "-m", "gpu"]


def test_docker_sweep_without_a_study_names_the_fix() -> None:
    with pytest.raises(SystemExit, match="EXP=<name in conf/experiment/>"):
        docker_run.main(["sweep", "--dry-run"])


def test_docker_build_labels_each_image_with_its_lock_hash() -> None:
    commands = docker_run.build_commands(docker_run.Options(image="host:5000/team/semillero:v2"))
    by_file = {cmd[cmd.index("-f") + 1]: cmd for cmd in commands}
    assert set(by_file) == {"docker/semillero.Dockerfile", "docker/axolotl.Dockerfile"}
    for dockerfile, lock in docker_run.IMAGES.values():
        cmd = by_file[dockerfile]
        args = dict(a.split("=", 1) for a in option_values(cmd, "--build-arg"))
        digest = hashlib.sha256((ROOT / lock).read_bytes()).hexdigest()
        assert args["LOCK_SHA256"] == digest
        assert re.fullmatch(r"[0-9a-f]{40}|unknown", args["GIT_COMMIT"])
        assert not set(SECRETS) & set(args), "secrets are never build arguments"
    main = dict(
        a.split("=", 1)
        for a in option_values(by_file["docker/semillero.Dockerfile"], "--build-arg")
    )
    axolotl_lock = ROOT / "requirements" / "axolotl-cuda.txt"
    assert main["AXOLOTL_LOCK_SHA256"] == hashlib.sha256(axolotl_lock.read_bytes()).hexdigest()
    tags = sorted(option_values(c, "-t")[0] for c in commands)
    assert tags == ["host:5000/team/semillero-axolotl:v2", "host:5000/team/semillero:v2"]


@pytest.mark.parametrize("image", ["semillero", "axolotl"])
def test_dockerfile_pins_the_base_and_installs_only_its_lock(image: str) -> None:
    dockerfile, lock = docker_run.IMAGES[image]
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^ARG CUDA_IMAGE=\S+@sha256:[0-9a-f]{64}$", text, re.M), "base not pinned"
    assert f'io.semillero.lock="{lock}"' in text
    assert 'io.semillero.lock.sha256="${LOCK_SHA256}"' in text
    assert "sha256sum --check" in text  # the label can only name the lock that was installed
    assert f"--require-hashes -r /tmp/{lock}" in text
    joined = re.sub(r"\\\n\s*", " ", text)  # continuation lines as one
    for install in re.findall(r"pip install[^&;|]*", joined):
        own_code = "--no-deps" in install and install.rstrip().endswith("-e .")
        assert "--require-hashes" in install or own_code, f"unlocked install: {install}"
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert 'VOLUME ["/cache"]' in text
    for secret in SECRETS:
        assert not re.search(rf"^(ARG|ENV)\b.*\b{secret}\b", text, re.M)


def test_hadolint_passes_on_every_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (it comes with requirements/cpu.txt)")
    files = sorted(str(p) for p in (ROOT / "docker").glob("*.Dockerfile"))
    assert len(files) == 2
    out = subprocess.run([hadolint, *files], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def workflow(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return {("on" if key is True else key): value for key, value in data.items()}  # YAML 1.1


def test_workflows_are_valid_and_do_what_the_issue_asks() -> None:
    ci = workflow("ci.yml")
    assert "push" in ci["on"]
    runs = [step.get("run", "") for step in ci["jobs"]["cpu"]["steps"]]
    for target in ("make lint", "make test", "make smoke"):
        assert any(target in run for run in runs), target

    gpu = workflow("gpu-smoke.yml")
    job = gpu["jobs"]["gpu"]
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "make docker-smoke" in runs and "make docker-test-gpu" in runs
    assert any("upload-artifact" in step.get("uses", "") for step in job["steps"])

    images = workflow("images.yml")
    assert images["on"]["push"]["tags"]
    runs = " ".join(step.get("run", "") for step in images["jobs"]["build-push"]["steps"])
    assert "make docker-build" in runs and "push" in runs


@pytest.mark.parametrize("name", ["ci.yml", "gpu-smoke.yml", "images.yml"])
def test_workflow_secrets_come_only_from_repository_secrets(name: str) -> None:
    text = (ROOT / ".github" / "workflows" / name).read_text()
    secret_env = r"^\s*([A-Z_]*(?:TOKEN|KEY|PASSWORD)[A-Z_]*):\s*(.+)$"
    for key, value in re.findall(secret_env, text, re.M):
        assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", value.strip()), f"{name}: {key}: {value}"
    assert "--build-arg" not in text


def test_a_run_inside_an_image_records_the_image(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    info = {
        "image": "ghcr.io/acme/semillero:v1",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "lock": "requirements/cuda.txt",
        "lock_sha256": "ab" * 32,
        "cuda_base": "13.0.2",
    }
    path = tmp_path / "semillero-image.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("SEMILLERO_IMAGE_INFO", str(path))
    record = run_tiny("model=distilgpt2")
    assert record.image == info
    folder = next(p for p in isolated.rglob("record.json")).parents[1]
    report_cfg = validate(compose(["experiment=gpt2_screening"])).report
    assert report_cfg is not None
    report = build(find_records(folder), report_cfg, folder, REPO)
    assert f"image: ghcr.io/acme/semillero:v1 (commit {info['commit']}" in report
    assert "ab" * 32 in report


def test_a_run_outside_an_image_records_none(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEMILLERO_IMAGE_INFO", raising=False)
    assert run_tiny("model=distilgpt2").image == {}

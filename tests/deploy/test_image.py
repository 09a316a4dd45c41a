"""deploy/Dockerfile: the image is built (classic builder, on a base image made from Debian
packages where no registry answers), run read-only as a non-root user with its data and keys
on volumes, used through its CLI and API, stopped with SIGTERM and started again on the same
volumes with nothing lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.conftest import DECISION, DEPLOY, required_tool
from tests.deploy.docker_daemon import ensure_daemon
from tests.ports import free_port

ROOT = DEPLOY.parent
BASE_IMAGE = "decisiontrail-base:bookworm"
COMPOSE = DEPLOY / "compose.yaml"
# What deploy/Dockerfile copies (the repository's .dockerignore lets these through).
BUILD_INPUTS = ["pyproject.toml", "README.md", "sdk", "service", "integrations"]

pytestmark = pytest.mark.slow


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def host_ca_bundle() -> Path | None:
    """The host's CA bundle, which trusts whatever TLS-inspecting proxy stands before PyPI."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):  # fmt: skip
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("image")
    ensure_daemon(work / "dockerd.log")
    required_tool("debootstrap")
    base = subprocess.run(
        [DEPLOY / "build-base-image.sh", BASE_IMAGE], timeout=1800, capture_output=True, text=True
    )
    assert base.returncode == 0, (base.stdout + base.stderr)[-3000:]
    context = work / "context"  # the build inputs only, and the host's CA bundle
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=ignore)
        else:
            shutil.copy2(source, context / name)
    if (bundle := host_ca_bundle()) is not None:
        shutil.copy(bundle, context / "build-ca.pem")
    tag = f"decisiontrail-test:{uuid.uuid4().hex[:12]}"
    docker(
        "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
        "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(context), timeout=1800,
    )  # fmt: skip
    yield tag
    docker("image", "rm", "-f", tag, check=False)


@dataclass
class Container:
    """One container of the image on the host's network, bound to 127.0.0.1:port."""

    image: str
    volumes: dict[str, str]
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"dt-test-{uuid.uuid4().hex[:12]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self) -> None:
        mounts = [
            arg for volume, path in self.volumes.items() for arg in ("-v", f"{volume}:{path}")
        ]
        docker(
            "run", "-d", "--name", self.name, "--network", "host", "--read-only",
            "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-e", "DECISIONTRAIL_HOST=127.0.0.1", "-e", f"DECISIONTRAIL_PORT={self.port}",
            *mounts, self.image,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if docker("inspect", "-f", "{{.State.Running}}", self.name) != "true":
                raise AssertionError(f"the container exited: {self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the container did not become ready: {self.logs()}")

    def logs(self) -> str:
        return docker("logs", self.name, check=False)

    def exec(self, *args: str) -> str:
        return docker("exec", self.name, *args)

    def health(self) -> str:
        return docker("inspect", "-f", "{{.State.Health.Status}}", self.name)

    def stop(self) -> int:
        """docker stop: SIGTERM (the image's STOPSIGNAL), SIGKILL only after 30 s; the exit code."""
        docker("stop", "-t", "30", self.name, timeout=60)
        return int(docker("inspect", "-f", "{{.State.ExitCode}}", self.name))

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


@pytest.fixture
def volumes(image: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:12]
    names = {
        f"dt-data-{suffix}": "/var/lib/decisiontrail",
        f"dt-keys-{suffix}": "/var/lib/decisiontrail-keys",
    }
    for name in names:
        docker("volume", "create", name)
    yield names
    for name in names:
        docker("volume", "rm", "-f", name, check=False)


def test_the_image_keeps_what_it_acknowledged_across_a_graceful_restart(
    image: str, volumes: dict[str, str]
) -> None:
    config = docker("image", "inspect", "-f", "{{.Config.User}} {{.Config.StopSignal}}", image)
    assert config == "10001:10001 SIGTERM"
    # deploy/compose.yaml's one-shot step makes the key directory (signing key and subject
    # pepper) before any replica starts; from then on the replicas mount it read-only.
    make_keys = yaml.safe_load(COMPOSE.read_text())["services"]["signing-key"]["command"]
    mounts = [arg for volume, path in volumes.items() for arg in ("-v", f"{volume}:{path}")]
    docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", *mounts, image,
        *make_keys,
    )  # fmt: skip
    read_only_keys = {
        volume: f"{path}:ro" if path.endswith("-keys") else path for volume, path in volumes.items()
    }
    first = Container(image, read_only_keys)
    try:
        first.run()
        assert first.exec("id", "-u") == "10001"
        key = next(
            line
            for line in first.exec(
                "decisiontrail", "keys", "create", "--tenant", "default", "--scope", "admin"
            ).splitlines()
            if line.startswith("dtk_")
        )
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=first.url, headers=headers, timeout=30) as client:
            receipt = client.post("/v1/decisions", json={**DECISION, "agent": "in-a-container"})
            assert receipt.status_code == 201, receipt.text
            decision_id = receipt.json()["id"]
            verification = client.post("/v1/verify", json={}).json()
            assert verification["ok"] is True, verification
        # The root filesystem is read-only: the service wrote only to its volumes.
        touched = subprocess.run(
            ["docker", "exec", first.name, "touch", "/opt/decisiontrail/x"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert touched.returncode != 0 and "Read-only file system" in touched.stderr
        deadline = time.monotonic() + 90  # the HEALTHCHECK's first runs
        while first.health() != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
        assert first.health() == "healthy"
        assert first.stop() == 0, first.logs()  # SIGTERM: a graceful shutdown
    finally:
        first.remove()

    second = Container(image, read_only_keys)
    try:
        second.run()
        with httpx.Client(base_url=second.url, headers=headers, timeout=30) as client:
            read_back = client.get(f"/v1/decisions/{decision_id}")
            assert read_back.status_code == 200, read_back.text
            assert read_back.json()["record"]["decision"]["agent"] == "in-a-container"
            assert client.post("/v1/verify", json={}).json()["ok"] is True
            listed = client.get("/v1/decisions").json()
            assert [d["record"]["id"] for d in listed["data"]] == [decision_id]
        # Data and keys on their own volumes: the key is not on the data volume.
        keys = second.exec("ls", "/var/lib/decisiontrail-keys").split()
        assert "keyring.json" in keys and "subject-pepper" in keys
        assert sum(name.endswith(".pem") for name in keys) == 1
        assert ".pem" not in second.exec("find", "/var/lib/decisiontrail")
        assert second.stop() == 0, second.logs()
    finally:
        second.remove()

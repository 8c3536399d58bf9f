"""Start exactly the containers the Pulumi program declares, with the docker CLI, for the conformance run.

No Pulumi CLI exists here, so the program runs under mocks (tests/pulumi/mockstack.py) and each
declared resource is realized by hand: images are built from the declared context, Dockerfile and
build args; the network and volumes are created by their declared names; each container is created
from its declared arguments (an argument this driver does not know stops the run, so nothing is
silently left out), its uploads are copied in with their owner and mode, and it is started in
dependency order, waiting for health where the program sets `wait`. Grafana's image cannot be
pulled here: that container alone is left out, and the run says so.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pulumi"))

from mockstack import CONTAINER, DYNAMIC, IMAGE, Deployment, Registration  # noqa: E402

LEFT_OUT = {"grafana": "grafana/grafana-oss cannot be pulled here (no registry but PyPI, Debian and npm)"}
HEALTH_TIMEOUT_S = 180
# Every Container argument the program may declare, and how it maps onto `docker create`.
KNOWN = {
    "name",
    "image",
    "command",
    "envs",
    "user",
    "hostname",
    "networksAdvanced",
    "ports",
    "volumes",
    "uploads",
    "healthcheck",
    "restart",
    "memory",
    "cpus",
    "stopSignal",
    "stopTimeout",
    "wait",
    "waitTimeout",
    "labels",
    "shmSize",
    "workingDir",
}


def docker(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], input=input, capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {result.stderr.decode(errors='replace').strip()}")
    return result


def log(message: str) -> None:
    print(f"[docker-conformance] {message}", flush=True)


def build_images(deployment: Deployment) -> None:
    """`docker build` each declared image (host network: the build reaches Debian's mirror directly)."""
    for image in deployment.of_type(IMAGE):
        build = image.inputs["build"]
        cmd = ["build", "--network", "host", "-q", "-t", image.inputs["imageName"], "-f", build["dockerfile"]]
        if build.get("target"):  # one stage of a multi-stage Dockerfile (the python image, not pgAdmin's)
            cmd += ["--target", build["target"]]
        for key, value in sorted(build.get("args", {}).items()):
            cmd += ["--build-arg", f"{key}={value}"]
        start = time.monotonic()
        docker(*cmd, build["context"])
        log(f"built {image.inputs['imageName']} in {time.monotonic() - start:.0f}s")


def create_args(inputs: dict) -> list[str]:
    unknown = set(inputs) - KNOWN
    if unknown:
        raise RuntimeError(f"{inputs['name']}: the driver does not realize {sorted(unknown)}")
    args = ["create", "--name", inputs["name"]]
    if inputs.get("user"):
        args += ["--user", inputs["user"]]
    if inputs.get("hostname"):
        args += ["--hostname", inputs["hostname"]]
    (net,) = inputs["networksAdvanced"]
    args += ["--network", net["name"]]
    for alias in net.get("aliases", []):
        args += ["--network-alias", alias]
    for port in inputs.get("ports") or []:
        args += ["-p", f"{port['ip']}:{int(port['external'])}:{int(port['internal'])}"]
    for volume in inputs.get("volumes") or []:
        args += ["-v", f"{volume['volumeName']}:{volume['containerPath']}"]
    for env in inputs.get("envs") or []:
        args += ["-e", env]
    health = inputs["healthcheck"]
    kind, *test = health["tests"]
    args += ["--health-cmd", test[0] if kind == "CMD-SHELL" else shlex.join(test)]
    args += ["--health-interval", health["interval"], "--health-timeout", health["timeout"]]
    args += ["--health-retries", str(int(health["retries"])), "--health-start-period", health["startPeriod"]]
    args += ["--restart", inputs["restart"], "--memory", f"{int(inputs['memory'])}m", "--cpus", inputs["cpus"]]
    args += ["--stop-signal", inputs["stopSignal"], "--stop-timeout", str(int(inputs["stopTimeout"]))]
    if inputs.get("shmSize"):
        args += ["--shm-size", f"{int(inputs['shmSize'])}m"]
    if inputs.get("workingDir"):
        args += ["--workdir", inputs["workingDir"]]
    for label in inputs.get("labels") or []:
        args += ["--label", f"{label['label']}={label['value']}"]
    return [*args, inputs["image"], *inputs.get("command", [])]


def upload_tar(uploads: list[dict]) -> bytes:
    """One tar of every upload, each file with its declared owner, group and mode.

    `docker cp -` keeps the tar's owners, as the Docker provider's upload does.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for upload in uploads:
            data = upload["content"].encode()
            info = tarfile.TarInfo(upload["file"].lstrip("/"))
            info.size = len(data)
            info.mode = int(upload.get("permissions", "0644"), 8)
            info.uid = int(upload.get("owner", 0))
            info.gid = int(upload.get("group", 0))
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def start_order(deployment: Deployment) -> list[Registration]:
    """Containers sorted so each starts after the containers it depends on."""
    containers = {c.urn: c for c in deployment.of_type(CONTAINER)}
    done: list[str] = []
    while len(done) < len(containers):
        ready = [
            urn
            for urn, c in containers.items()
            if urn not in done and all(d in done for d in c.dependencies if d in containers)
        ]
        if not ready:
            raise RuntimeError("container dependencies form a cycle")
        done += sorted(ready)
    return [containers[urn] for urn in done]


def wait_healthy(name: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < HEALTH_TIMEOUT_S:
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        status = state.get("Health", {}).get("Status")
        if status == "healthy":
            return time.monotonic() - start
        if not state.get("Running") and state.get("ExitCode"):
            break
        time.sleep(0.5)
    logs = docker("logs", "--tail", "30", name, check=False)
    raise RuntimeError(f"{name} did not become healthy:\n{logs.stdout.decode()}{logs.stderr.decode()}")


@dataclass
class DockerStack:
    deployment: Deployment
    started: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    schema: dict[str, dict] = field(default_factory=dict)  # schema resource name -> its provider's outputs

    def service(self, name: str) -> Registration:
        return self.deployment.containers()[name]

    def container(self, service: str) -> str:
        return self.service(service).inputs["name"]

    def ip(self, service: str) -> str:
        out = docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.container(service)
        )
        return out.stdout.decode().strip()

    @property
    def primary(self) -> str:
        """The container writes reach PostgreSQL through: HAProxy's read-write port on a cluster."""
        return "haproxy" if "haproxy" in self.deployment.containers() else "postgres"

    def dynamic(self, name: str) -> Registration:
        return next(r for r in self.deployment.of_type(DYNAMIC) if r.name == name)

    def real_dsn(self, dsn: str) -> str:
        """A declared admin DSN (the mocks' placeholder address) pointed at the running PostgreSQL (the leader)."""
        parts = urlsplit(dsn)
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + f"{self.ip(self.primary)}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))


def up(deployment: Deployment) -> DockerStack:
    stack = DockerStack(deployment)
    network = next(r for r in deployment.resources if r.type == "docker:index/network:Network")
    docker("network", "create", "--driver", network.inputs["driver"], network.inputs["name"])
    for volume in deployment.resources:
        if volume.type == "docker:index/volume:Volume":
            docker("volume", "create", volume.inputs["name"])
    for container in start_order(deployment):
        inputs = container.inputs
        service = {lab["label"]: lab["value"] for lab in inputs["labels"]}["agentdb.service"]
        if service in LEFT_OUT:
            stack.left_out[service] = LEFT_OUT[service]
            log(f"left out {service}: {LEFT_OUT[service]}")
            continue
        docker(*create_args(inputs))
        stack.started.append(inputs["name"])
        if inputs.get("uploads"):
            docker("cp", "-", f"{inputs['name']}:/", input=upload_tar(inputs["uploads"]))
        docker("start", inputs["name"])
        if inputs.get("wait"):
            log(f"{service} healthy after {wait_healthy(inputs['name']):.1f}s")
    for name in stack.started:  # everything else is healthy too before the checks begin
        wait_healthy(name)
    return stack


def remove_network(name: str, limit_s: float = 60) -> None:
    """Remove a network, waiting while dockerd still releases the endpoints of containers just removed
    (under load it answers "has active endpoints" for a while); fail if it outlives `limit_s`."""
    deadline = time.monotonic() + limit_s
    while docker("network", "inspect", name, check=False).returncode == 0:
        result = docker("network", "rm", name, check=False)
        if result.returncode != 0 and time.monotonic() > deadline:
            raise RuntimeError(f"network {name} not removed: {result.stderr.decode(errors='replace').strip()}")
        time.sleep(1)


def down(deployment: Deployment) -> None:
    """Remove the containers, the network and the volumes of the run (by their declared names)."""
    names = [container.inputs["name"] for container in deployment.of_type(CONTAINER)]
    docker("rm", "-f", "-v", *names, check=False)  # one call: the CLI removes them in parallel
    for resource in deployment.resources:
        if resource.type == "docker:index/network:Network":
            remove_network(resource.inputs["name"])
        if resource.type == "docker:index/volume:Volume":
            docker("volume", "rm", "-f", resource.inputs["name"], check=False)

"""Run the Pulumi program (infra/__main__.py) under pulumi.runtime mocks and record what it declares."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks

from infra.settings import Settings, load

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "infra" / "__main__.py"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's wire signature of a secret value
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
STACKS = ("dev", "staging", "prod")
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/image:Image"
PASSWORD = "random:index/randomPassword:RandomPassword"
DYNAMIC = "pulumi-python:dynamic:Resource"


def mock_password(name: str) -> str:
    """Deterministic and as long as a real one, so every occurrence can be searched for."""
    return base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).decode().rstrip("=")


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict  # deserialized, secrets unwrapped
    raw: dict  # the wire form: secrets still wrapped in their signature
    dependencies: list[str]


@dataclass
class Deployment:
    stack: str
    resources: list[Registration] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)  # stack output name -> (value, is_secret)
    settings: Settings | None = None  # the stack file's settings, as infra.settings.load reads them

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources if r.type == typ]

    def containers(self) -> dict[str, Registration]:
        """Container resources keyed by their `agentdb.service` label."""
        out = {}
        for r in self.of_type(CONTAINER):
            labels = {label["label"]: label["value"] for label in r.inputs["labels"]}
            out[labels["agentdb.service"]] = r
        return out

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def passwords(self) -> dict[str, str]:
        """Secret name -> the password the mocks generated for it."""
        return {r.name.removeprefix("passwords-"): r.inputs["_mock_result"] for r in self.of_type(PASSWORD)}


@functools.cache
def certificates(name: str, dns: tuple[str, ...]) -> dict:
    """What infra/program/backup_tls.py's provider creates, made once per stack and host names."""
    from infra.program.backup_tls import CertificatesProvider

    return CertificatesProvider().create({"name": name, "dns": list(dns)}).outs


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outs = dict(args.inputs)
        if args.typ == PASSWORD:
            outs["result"] = mock_password(args.name)
        elif args.typ == CONTAINER:
            outs["networkDatas"] = [{"ipAddress": "172.30.0.2", "networkName": "agentdb"}]
        elif args.typ == DYNAMIC and "heads" in outs:
            outs["revision"] = (outs["heads"] or [None])[0]
        elif args.typ == DYNAMIC and "dns" in outs:  # the None-valued outputs are not sent as inputs
            # pgBackRest's certificates: the provider's own create (openssl, nothing outside the process), so
            # the containers the conformance run starts from these inputs really authenticate each other.
            outs = certificates(outs["name"], tuple(outs["dns"]))
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping each registration's wire form and dependencies."""

    def __init__(self, deployment: Deployment):
        super().__init__(Mocks())
        self.deployment = deployment

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = reveal(pulumi.runtime.rpc.deserialize_properties(request.object))
            if request.type == PASSWORD:
                inputs["_mock_result"] = mock_password(request.name)
            self.deployment.resources.append(
                Registration(
                    request.type,
                    request.name,
                    response.urn,
                    inputs,
                    json_format.MessageToDict(request.object),
                    list(request.dependencies),
                )
            )
        return response


def config_of(stack_file: Path) -> dict[str, str]:
    """A stack file's config as Pulumi hands it to a program: every value a string, objects as JSON."""
    doc = yaml.safe_load(stack_file.read_text()) or {}
    out = {}
    for key, value in (doc.get("config") or {}).items():
        if isinstance(value, str):
            out[key] = value
        else:
            out[key] = json.dumps(value)
    return out


def deploy(stack: str, stack_file: Path | None = None, extra_config: dict[str, str] | None = None) -> Deployment:
    """Run infra/__main__.py for `stack` under mocks (as a preview would) and return what it registered."""
    path = stack_file or REPO / f"Pulumi.{stack}.yaml"
    # pulumi.runtime.test runs on asyncio's current loop; an earlier asyncio.run() (asyncpg tests)
    # leaves none set in the main thread, so give it a fresh one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    deployment = Deployment(stack, settings=load(stack, path=path))
    monitor = RecordingMonitor(deployment)
    pulumi.runtime.set_mocks(Mocks(), project="agentdb", stack=stack, preview=False, monitor=monitor)
    config = config_of(path)
    config.update(extra_config or {})
    pulumi.runtime.set_all_config(config)

    exports: dict[str, object] = {}

    async def collect() -> None:
        for name, value in exports.items():
            out = pulumi.Output.from_input(value)
            deployment.outputs[name] = (await out.future(), await out.is_secret())

    @pulumi.runtime.test
    def program():
        export, pulumi.export = pulumi.export, exports.__setitem__  # observe what the program exports
        try:
            runpy.run_path(str(MAIN), run_name="__main__")
        finally:
            pulumi.export = export
        return collect()

    program()
    return deployment


def reveal(value):
    """The values with their secret wrappers removed, for checks on what a resource is given."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return reveal(value["value"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def visible(value):
    """The wire form with every secret replaced by a placeholder: what is visible in plain text."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return "<secret>"
        return {k: visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [visible(v) for v in value]
    return value

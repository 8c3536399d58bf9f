"""The TLS certificates of pgBackRest's repository host and database side, made once and kept in the state.

A dynamic resource whose `create` runs the local runner's own code (infra.repository.make_certificates,
openssl): a CA, a certificate for each side naming both containers' host names, and the CA's key thrown
away, so nobody can mint a third certificate the two servers would accept. Pulumi keeps the PEMs,
encrypted, as secret outputs; `pulumi up` makes them again only when the host names change, and a
`pulumi up --replace` of the resource renews them.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

# Output name -> the file make_certificates() returns it as.
OUTPUTS = {"ca_crt": "ca.crt", "repo_crt": "repo.crt", "repo_key": "repo.key", "db_crt": "db.crt", "db_key": "db.key"}


class CertificatesProvider(ResourceProvider):
    """Inputs: name (the stack, in the CA's name), dns (host names). Outputs: the PEMs of OUTPUTS."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        from infra import repository

        made = repository.make_certificates(props["name"], list(props["dns"]))
        outs = {key: made[file].decode() for key, file in OUTPUTS.items()}
        return CreateResult(id_=f"pgbackrest-tls-{props['name']}", outs={**props, **outs})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("name", "dns") if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # nothing outside the state


class Certificates(Resource):
    """`ca_crt`, `repo_crt`, `repo_key`, `db_crt`, `db_key`: secret outputs (PEM text)."""

    ca_crt: pulumi.Output[str]
    repo_crt: pulumi.Output[str]
    repo_key: pulumi.Output[str]
    db_crt: pulumi.Output[str]
    db_key: pulumi.Output[str]

    def __init__(self, name: str, stack: str, dns: list[str], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=list(OUTPUTS)))
        super().__init__(CertificatesProvider(), name, {"name": stack, "dns": dns, **dict.fromkeys(OUTPUTS)}, opts)

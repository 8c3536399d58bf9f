"""`pulumi up` on Docker: read the stack's settings once, then build one component per concern."""

import sys
from pathlib import Path

# Pulumi runs this file with infra/ first on sys.path; the program imports everything as the `infra`
# package (installed in the venv), so no module of infra/ may be found as a top-level name.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

import pulumi  # noqa: E402

from infra.program import build, config_admin_password, config_overrides, settings_from_config  # noqa: E402

config = pulumi.Config("agentdb")
stack = pulumi.get_stack()
settings = settings_from_config(config, stack)
for name, value in build(stack, settings, config_overrides(config), config_admin_password(config)).items():
    pulumi.export(name, value)

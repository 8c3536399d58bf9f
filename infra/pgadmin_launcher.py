"""Start pgAdmin 4 for agentdb: set it up on the first start, register the servers, exec gunicorn.

Standard library only: the local runner runs it with agentdb's python, the pgadmin container with
the image's. It creates pgAdmin's configuration database on the first start with the generated
login (passed to pgAdmin's setup.py in the child's environment, never on a command line), registers
the servers again on every start (so the list follows `agentdb:databases`), copies the pgpass file
to where pgAdmin resolves `PassFile` in server mode, then replaces itself with gunicorn, whose
environment holds no secret.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PASSFILE = "pgpass"  # servers.json says "/pgpass": in server mode that is under the user's storage
WORKERS, THREADS = 1, 25  # pgAdmin keeps per-session state in its worker: one worker, many threads


def storage_name(login: str) -> str:
    """The directory pgAdmin keeps a user's files in, named as pgAdmin's preprocess_username does."""
    name = login if login and not login[0].isdigit() else f"pga_user_{login}"
    return name.replace("@", "_").replace("/", "slash").replace("\\", "slash")


def package_dir(venv: Path) -> Path:
    """The installed pgadmin4 package (its setup.py and pgAdmin4.py) inside `venv`."""
    found = sorted(venv.glob("lib/python3*/site-packages/pgadmin4/pgAdmin4.py"))
    if not found:
        raise SystemExit(
            f"pgadmin: no pgadmin4 package in {venv}; run `python -m infra.tools ensure-pgadmin` (make deps)"
        )
    return found[-1].parent


def _setup(venv: Path, package: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(package / "setup.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=package,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"pgadmin: setup.py {args[0]} failed:\n{output}")
    return output


def serve(args: argparse.Namespace) -> None:
    """Set pgAdmin up (first start), register the servers, then exec gunicorn on `args.listen`."""
    venv, data = args.venv, args.data
    package = package_dir(venv)
    login = args.login_file.read_text().strip()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PGADMIN_SETUP_")}
    base["CONFIG_DISTRO_FILE_PATH"] = str(args.config)
    # The service user's home may be root's (supervisord's environment): keep pgAdmin's and
    # gunicorn's dot-files in the data directory instead.
    base["HOME"] = str(data)
    data.mkdir(mode=0o700, exist_ok=True)
    if not (data / "pgadmin4.db").exists():
        print("pgadmin: creating the configuration database and the admin login", flush=True)
        setup_env = {
            **base,
            "PGADMIN_SETUP_EMAIL": login,
            "PGADMIN_SETUP_PASSWORD": args.password_file.read_text().strip(),
        }
        try:
            _setup(venv, package, setup_env, "setup-db")
        except SystemExit:
            # A half-made database would skip the setup (and the login) on every later start.
            (data / "pgadmin4.db").unlink(missing_ok=True)
            raise
    # load-servers reports a bad file on stdout and still exits 0: its summary line is the proof.
    output = _setup(venv, package, base, "load-servers", str(args.servers), "--user", login, "--replace")
    if "Added" not in output:
        raise SystemExit(f"pgadmin: registering the servers failed:\n{output}")
    print(f"pgadmin: {output.strip().splitlines()[-1]}", flush=True)
    storage = data / "storage" / storage_name(login)
    storage.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = storage / PASSFILE
    tmp = target.with_name(".pgpass.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle, args.pgpass.open() as source:
        shutil.copyfileobj(source, handle)
    os.replace(tmp, target)
    gunicorn = str(venv / "bin" / "gunicorn")
    argv = [
        gunicorn,
        "--bind",
        args.listen,
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--timeout",
        "120",
        "--chdir",
        str(package),
        "pgAdmin4:app",
    ]
    os.execve(gunicorn, argv, base)


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.pgadmin_launcher` with the paths infra.pgadmin.launcher_args gives."""
    parser = argparse.ArgumentParser(prog="python -m infra.pgadmin_launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the rendered config_distro.py")
    parser.add_argument("--servers", type=Path, required=True, help="the rendered servers.json")
    parser.add_argument("--pgpass", type=Path, required=True, help="the rendered pgpass (0600)")
    parser.add_argument("--login-file", type=Path, required=True, help="the secret file holding the login")
    parser.add_argument("--password-file", type=Path, required=True, help="the secret file holding the password")
    parser.add_argument("--data", type=Path, required=True, help="pgAdmin's data directory")
    parser.add_argument("--listen", required=True, help="host:port gunicorn binds to")
    parser.add_argument("--venv", type=Path, required=True, help="the virtualenv pgadmin4 is installed in")
    args = parser.parse_args(argv)
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

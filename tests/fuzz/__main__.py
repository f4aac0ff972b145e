"""``python -m tests.fuzz``: schemathesis ``--checks all`` on the wallet and bank APIs.

1. A temporary directory holds both SQLite databases, the keys and the mailbox; every
   ``KOUZA_*`` variable of the caller is dropped and the servers run there (no ``.env``).
2. Credentials are provisioned the way a deployment does it: the wallet's client key is
   registered at the bank (``kouza banks oauth-jwks`` → ``kouza bank register-client``), the
   partner banks are seeded, an admin operator is created, and a customer signs up, verifies the
   e-mail code from the development mailbox, logs in and opens a wallet.
3. ``st run`` runs once per API (``tests/fuzz/hooks.py`` authenticates every operation) with a
   fixed seed and a small number of examples per operation; the step fails if either run finds
   anything. Reports (JUnit, and the servers' logs) stay in ``--report-dir``.

Options: ``--max-examples`` (default 8), ``--seed`` (default 2020), ``--report-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLIENT_ID = "kouza-wallet"
STARTUP_SECONDS = 90


@dataclass
class Api:
    """One server under test."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(var_dir: Path, bank_url: str, wallet_url: str, staff_token: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KOUZA_")}
    env.update(
        {
            "KOUZA_VAR_DIR": str(var_dir),
            "KOUZA_BANK_VAR_DIR": str(var_dir),
            "KOUZA_BANK_ISSUER": bank_url,
            "KOUZA_BANK_API_URL": bank_url,
            "KOUZA_BANK_CLIENT_ID": CLIENT_ID,
            "KOUZA_BANK_STAFF_TOKEN": staff_token,
            "KOUZA_BANK_OAUTH_REDIRECT_URI": wallet_url + "/app/bank-callback",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
    )
    return env


def kouza(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "kouza"), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kouza {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def serving(name: str, args: list[str], url: str, env: dict[str, str], work: Path) -> Iterator[Api]:
    log = work / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "kouza"), *args], env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT
        )
    api = Api(name, url, process, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} API exited:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} API not healthy after {STARTUP_SECONDS}s")
            time.sleep(0.3)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def email_code(env: dict[str, str], work: Path, var_dir: Path, email: str) -> str:
    kouza(env, work, "dev", "outbox", "--to", email)  # delivers what is still pending
    for line in reversed((var_dir / "mailbox" / "email.jsonl").read_text().splitlines()):
        message = json.loads(line)
        found = re.search(r"\b(\d{6})\b", message["body"])
        if message["recipient"] == email and found:
            return found.group(1)
    raise SystemExit(f"no verification code was e-mailed to {email}")


def customer(wallet_url: str, env: dict[str, str], work: Path, var_dir: Path) -> dict[str, str]:
    """A customer with a verified e-mail address and a wallet (its login)."""
    email, password = "fuzz.customer@example.jp", secrets.token_urlsafe(24)
    with httpx.Client(base_url=wallet_url, timeout=30) as http:
        http.post("/v1/auth/signup", json={"email": email, "password": password}).raise_for_status()
        code = email_code(env, work, var_dir, email)
        http.post("/v1/auth/verify-email", json={"email": email, "code": code}).raise_for_status()
        login = http.post("/v1/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        http.post("/v1/wallets", headers=headers).raise_for_status()
    return {"CUSTOMER_EMAIL": email, "CUSTOMER_PASSWORD": password}


def schemathesis(api: Api, env: dict[str, str], args: argparse.Namespace, work: Path) -> int:
    command = [
        str(BIN / "st"),
        "--config-file",
        str(ROOT / "tests" / "fuzz" / "schemathesis.toml"),
        "run",
        api.url + "/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--seed",
        str(args.seed),
        "--max-examples",
        str(args.max_examples),
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(args.report_dir / f"{api.name}-junit.xml"),
    ]
    print(f"== {api.name} API: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    # in the temporary directory: schemathesis keeps a cache of past failures in its cwd
    status = subprocess.run(command, env=env, cwd=work, check=False).returncode
    print(f"== {api.name} API: exit {status} in {time.monotonic() - started:.0f}s", flush=True)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--report-dir", type=Path, default=ROOT / "var" / "fuzz")
    args = parser.parse_args()
    args.report_dir = args.report_dir.resolve()
    args.report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kouza-fuzz-") as tmp:
        work = Path(tmp)
        var_dir = work / "var"
        bank_url = f"http://127.0.0.1:{free_port()}"
        wallet_url = f"http://127.0.0.1:{free_port()}"
        staff_token = secrets.token_urlsafe(24)
        env = base_env(var_dir, bank_url, wallet_url, staff_token)
        jwks = work / "wallet-jwks.json"
        jwks.write_text(kouza(env, work, "banks", "oauth-jwks"))
        kouza(env, work, "bank", "seed", "--customers", "2")
        kouza(
            env,
            work,
            "bank",
            "register-client",
            CLIENT_ID,
            "--name",
            "kouza",
            "--jwks-file",
            str(jwks),
            "--redirect-uri",
            env["KOUZA_BANK_OAUTH_REDIRECT_URI"],
        )
        operator = kouza(env, work, "operators", "create", "fuzz-admin", "--role", "admin")
        credentials = {
            "OPERATOR_TOKEN": operator.strip().splitlines()[-1],
            "STAFF_TOKEN": staff_token,
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_KEY_FILE": str(var_dir / "bank-oauth-key.jwk"),
            "BANK_ISSUER": bank_url,
            "WALLET_URL": wallet_url,
        }
        port = lambda url: url.rsplit(":", 1)[1]  # noqa: E731
        statuses = []
        try:
            with (
                serving(
                    "bank", ["bank", "serve", "--port", port(bank_url)], bank_url, env, work
                ) as bank,
                serving(
                    "wallet",
                    ["serve", "--port", port(wallet_url), "--no-access-log"],
                    wallet_url,
                    env,
                    work,
                ) as wallet,
            ):
                credentials |= customer(wallet_url, env, work, var_dir)
                st_env = (
                    env
                    | {"SCHEMATHESIS_HOOKS": "tests.fuzz.hooks"}
                    | {"KOUZA_FUZZ_" + name: value for name, value in credentials.items()}
                )
                for api in (wallet, bank):
                    statuses.append(schemathesis(api, st_env, args, work))
        finally:
            for log in work.glob("*.log"):
                shutil.copy(log, args.report_dir / log.name)
    elapsed = time.monotonic() - started
    failed = any(statuses) or len(statuses) != 2
    print(
        f"fuzz: {'FAILED' if failed else 'passed'} in {elapsed:.0f}s "
        f"(reports and server logs in {args.report_dir})",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, ``pg_ctl start`` on a free
localhost port (and a unix socket in that folder), stopped and deleted at the end.

PostgreSQL refuses to run as root, and CI runs as root: there the server runs as the ``postgres`` user that
Debian's ``postgresql`` package creates (or ``nobody``), through ``runuser``. Password authentication
(scram-sha-256) is on even for localhost, so the tests exercise a real password in the URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

USER = "latentatlas"
PASSWORD = "s3cret-Pa55"
DATABASE = "latentatlas"


class Unavailable(RuntimeError):
    """No server can be started here; the message says why (the tests skip with it)."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    socket_dir: str
    user: str = USER
    password: str = PASSWORD
    database: str = DATABASE

    def url(self, driver: str = "postgresql", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"{driver}://{self.user}:{pw}@{self.host}:{self.port}/{self.database}"

    def psql(self, sql: str) -> str:
        """Run SQL through ``psql`` (the server's own client: the tests' setup does not depend on the code under
        test) and return its output."""
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run([_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p",
                               str(self.port), "-U", self.user, "-d", self.database, "-c", sql],
                              capture_output=True, text=True, env=env, timeout=60)
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout


def _bin_dir() -> Path | None:
    """Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def _bin(name: str) -> str:
    d = _bin_dir()
    if d is None or not (d / name).exists():
        raise Unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    return str(d / name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The unprivileged account to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return name
    raise Unavailable("running as root, and no 'postgres' user with runuser to start PostgreSQL as")


@contextlib.contextmanager
def running_server() -> Iterator[Server]:
    """Start a fresh server; yield it; stop it and remove its files."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    as_user = _server_user()
    # Short path: the socket path must stay under ~107 bytes.
    root = Path(tempfile.mkdtemp(prefix="la-pg-", dir="/tmp"))
    data, pwfile, log = root / "data", root / "pwfile", root / "server.log"
    pwfile.write_text(PASSWORD + "\n")
    if as_user is not None:
        entry = pwd.getpwnam(as_user)
        for p in (root, pwfile):
            os.chown(p, entry.pw_uid, entry.pw_gid)
        os.chmod(root, 0o700)
    prefix = ["runuser", "-u", as_user, "--"] if as_user else []
    port = _free_port()

    def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(prefix + args, capture_output=True, text=True, timeout=timeout,
                              cwd=str(root), env={**os.environ, "LC_ALL": "C"})

    started = False
    try:
        done = run([initdb, "-D", str(data), "-U", USER, "--pwfile", str(pwfile), "--auth", "scram-sha-256",
                    "-E", "UTF8", "--no-sync"])
        if done.returncode:
            raise Unavailable(f"initdb failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        done = run([pg_ctl, "start", "-w", "-t", "60", "-D", str(data), "-l", str(log), "-o", opts])
        if done.returncode:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise Unavailable(f"pg_ctl start failed: {done.stderr.strip()} {' '.join(tail)}")
        started = True
        server = Server(host="127.0.0.1", port=port, socket_dir=str(root))
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        done = subprocess.run([_bin("createdb"), "-h", server.host, "-p", str(port), "-U", USER, DATABASE],
                              capture_output=True, text=True, env=env, timeout=60)
        if done.returncode:
            raise Unavailable(f"createdb failed: {done.stderr.strip()}")
        yield server
    finally:
        if started:
            run([pg_ctl, "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "60"])
        shutil.rmtree(root, ignore_errors=True)

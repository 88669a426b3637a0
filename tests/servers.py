"""Real servers on loopback for end-to-end tests, load tests and benchmarks: empty, migrated
SQLite and PostgreSQL databases, and gunicorn running the bot (or another WSGI app) with its
settings passed as environment variables, as in production.

Used by tests/test_e2e_gunicorn.py, tests/test_load.py and the scripts in bench/ (which put
this folder on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

from sqlalchemy import text

from bot.store import migrate, storage

ROOT = Path(__file__).resolve().parent.parent
# The token the test servers check signatures with (not a secret: tests only).
AUTH_TOKEN = "test-auth-token-not-a-secret"


def postgres_server(database: str = "klinik_test") -> str:
    """The URL of `database` on the throwaway PostgreSQL server of scripts/test-postgres (both
    created if needed; KLINIK_PG_DIR and KLINIK_PG_PORT choose which server). RuntimeError when
    it cannot run."""
    result = subprocess.run([str(ROOT / "scripts" / "test-postgres"), database], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"PostgreSQL unavailable: {result.stderr.strip() or result.returncode}")
    return result.stdout.strip().splitlines()[-1]


def reset_postgres(url: str) -> str:
    """Drop everything in the database at `url` and migrate it to the current schema."""
    engine = storage.make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    engine.dispose()
    return url


def postgres_database(name: str) -> str:
    """An empty, migrated database `name` on the test PostgreSQL server, beside the one the
    test suite uses, so that benchmarks never wipe a test run's data."""
    server = postgres_server()
    admin = storage.make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).scalar():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return reset_postgres(server.rsplit("/", 1)[0] + f"/{name}")


def sqlite_database(directory: Path) -> str:
    """An empty, migrated SQLite database in `directory`."""
    url = f"sqlite:///{directory / 'klinik.db'}"
    engine = storage.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(
    database_url: str,
    log_path: Path,
    *,
    app: str = "app:app",
    workers: int = 2,
    threads: int = 4,
    migrate: bool = True,
    **environment: str,
) -> Iterator[str]:
    """gunicorn serving `app` on a free loopback port, with gunicorn.conf.py and the bot's
    settings from the environment (extra variables as keyword arguments); yields its base URL
    once /healthz answers 200, and stops it (SIGTERM) afterwards. `migrate` runs the release
    step (`python -m bot db upgrade`) first, as the Procfile does."""
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY=str(workers),
        GUNICORN_THREADS=str(threads),
        BOT_DEV_MODE="",
        ALLOW_EXAMPLE_VALUES="1",  # the shipped knowledge, as the in-process tests use it
    )
    env.update(environment)
    if migrate:
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
        )
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(base, process, log_path)
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"gunicorn did not become healthy:\n{log_path.read_text()}")
        time.sleep(0.2)


class TcpForwarder:
    """A loopback port that forwards every connection to `target` while started: a database
    server that can go away (stop: the port refuses, open connections are cut) and come back
    on the same address (start again)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is None:
            return
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        for connection in self._open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

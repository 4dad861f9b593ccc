"""The web host's durable fallback for the usage ledger: when Redis cannot take records (outage, restart),
they are appended to a file and delivered once Redis answers again. No answered request goes unrecorded.

One append-only file per process under LEDGER_SPOOL_DIR (default `<var dir>/ledger-spool`), named
`ledger-<host>-<pid>-<n>.jsonl`; every batch is written and fsynced before the requests it holds are answered.
Lines are `e <usage entry JSON>` (a finished request) or `b <marker JSON>` (a request started). A process
delivers its own files and those left by dead processes of this host (renamed `….sending` while it does, so
two processes never deliver one file); never a live process's file, which it may still be appending to.
Delivery is idempotent by request id (the ingester ignores duplicates), so a file delivered twice after a
crash mid-delivery costs nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

logger = logging.getLogger("apps.billing.ledger")

SUFFIX = ".jsonl"
SENDING = ".sending"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LedgerSpool:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.host = socket.gethostname().replace("-", "_")
        self.pid = os.getpid()
        self._generation = 0

    @property
    def current(self) -> Path:
        return self.directory / f"ledger-{self.host}-{self.pid}-{self._generation}{SUFFIX}"

    def write(self, lines: list[bytes]) -> None:
        """Append lines durably (written and fsynced before returning). Blocking: call it off the event loop."""
        created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.current
        new_file = not path.exists()
        with open(path, "ab") as handle:
            handle.write(b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        if created or new_file:  # the file's name must survive a crash too
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _owner(self, path: Path) -> tuple[str, int] | None:
        parts = path.name.split(SUFFIX)[0].split("-")
        if len(parts) != 4 or parts[0] != "ledger":
            return None
        try:
            return parts[1], int(parts[2])
        except ValueError:
            return None

    def deliverable(self) -> list[Path]:
        """Files this process may deliver: its own, and any a dead process of this host left behind."""
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.iterdir()):
            if SUFFIX not in path.name:
                continue
            owner = self._owner(path)
            if owner is None or owner[0] != self.host:
                continue
            sending_by = None
            if f"{SENDING}." in path.name:
                tail = path.name.rsplit(".", 1)[1]
                if not tail.isdigit():
                    continue
                sending_by = int(tail)
            if sending_by is not None:
                if sending_by != self.pid and _alive(sending_by):
                    continue  # another live process is delivering it
            elif owner[1] != self.pid and _alive(owner[1]):
                continue  # a live process's spool: it may still append
            out.append(path)
        return out

    def claim(self) -> list[Path]:
        """Take the deliverable files: this process's current file is closed (the next write starts a new one)
        and every file is renamed `….sending.<pid>`."""
        claimed = []
        for path in self.deliverable():
            if path == self.current:
                self._generation += 1
            base = path.name.split(SENDING)[0]
            target = path.with_name(f"{base}{SENDING}.{self.pid}")
            try:
                os.replace(path, target)
            except FileNotFoundError:
                continue  # another process took it
            claimed.append(target)
        return claimed

    @staticmethod
    def read(path: Path) -> list[tuple[str, bytes]]:
        """(kind, payload) of each whole line; a line torn by a crash mid-write is skipped."""
        out = []
        for line in path.read_bytes().split(b"\n"):
            kind, _, payload = line.partition(b" ")
            if kind in (b"e", b"b") and payload.startswith(b"{") and payload.endswith(b"}"):
                out.append((kind.decode(), payload))
        return out

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    def unclaim(self, path: Path) -> None:
        """Delivery failed: back to a plain spool file of this process (retried later, or by a successor)."""
        base = path.name.split(SENDING)[0]
        os.replace(path, path.with_name(base))

    def pending(self) -> bool:
        return bool(self.deliverable())

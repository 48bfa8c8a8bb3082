"""A crash-safe results store: checksummed part files, an append-only index, a manifest.

Layout of a results folder::

    manifest.json       config, plan hash, versions, seeds, git revision, times (atomic)
    index.jsonl         one line per finished chunk of runs, each with its own checksum
    parts/part-NNNNNN.csv   the rows of one finished chunk (tidy, one row per run x checkpoint)

Writes are ordered so that a kill at any instant leaves a consistent store:

1. a part is written to a temporary file, flushed, fsynced and atomically renamed;
2. only then is its index line appended (one ``write`` of the whole line, then ``fsync``).

A part without an index line is an orphan of an interrupted chunk: it is ignored and
overwritten when the chunk runs again. An index line without its final newline is the
trace of a kill during the append: it is reported with a warning, ignored, and cut off on
``--resume``. Anything else that does not verify (a line whose checksum fails, a part whose
size or SHA-256 differs from its index line, a missing part, a manifest that fails its
checksum) raises :class:`~rlhf_gbpm.errors.ResultsCorruptedError`; corrupted data is never
used.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from rlhf_gbpm.errors import GBPMWarning, ResultsCorruptedError

__all__ = [
    "COLUMNS",
    "FORMAT",
    "IndexRecord",
    "ResultsStore",
    "atomic_write_bytes",
    "environment_info",
    "load_results",
]

logger = logging.getLogger(__name__)

FORMAT = "rlhf-gbpm-results/1"

# the metric columns every part holds, after the run description columns
COLUMNS = (
    "t",
    "mbr_regret",
    "abr_regret",
    "cum_mbr_regret",
    "cum_abr_regret",
    "estimation_error",
    "ne_residual",
)

_VERSIONED = ("numpy", "scipy", "pandas", "gymnasium", "torch", "cvxpy", "matplotlib",
              "seaborn", "tqdm", "threadpoolctl", "ray")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically: temporary file, fsync, rename, fsync of the folder.

    Args:
        path: Destination; its folder must exist.
        data: The complete contents.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _git_revision() -> dict:
    """Git revision of the source tree this package was imported from, if any."""
    src = Path(__file__).resolve().parents[2]
    out = {"revision": None, "dirty": None}
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
        if rev.returncode == 0:
            out["revision"] = rev.stdout.strip()
            st = subprocess.run(["git", "-C", str(src), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, check=False)
            out["dirty"] = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def environment_info() -> dict:
    """Versions of Python, rlhf-gbpm and its dependencies, the platform and git revision.

    Returns:
        A JSON-serializable dict.
    """
    versions = {"python": sys.version.split()[0]}
    for name in ("rlhf-gbpm",) + _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "git": _git_revision(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class IndexRecord:
    """One verified line of ``index.jsonl``: a finished chunk and its part file.

    Attributes:
        chunk: Chunk id in the sweep plan.
        part: Part file name under ``parts/``.
        run_ids: The runs the part holds.
        rows: Number of data rows.
        nbytes: File size in bytes.
        sha256: SHA-256 of the file.
    """

    chunk: int
    part: str
    run_ids: tuple[int, ...]
    rows: int
    nbytes: int
    sha256: str

    def to_line(self) -> bytes:
        """The index line: JSON with a ``check`` field over the other fields, newline-ended."""
        body = {"chunk": self.chunk, "part": self.part, "run_ids": list(self.run_ids),
                "rows": self.rows, "bytes": self.nbytes, "sha256": self.sha256}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        body["check"] = _sha256(text.encode())
        return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes, where: str) -> IndexRecord:
        """Parse and verify one index line (without its newline).

        Raises:
            ResultsCorruptedError: If the line is not JSON or fails its checksum.
        """
        try:
            body = json.loads(line.decode())
            check = body.pop("check")
            text = json.dumps(body, sort_keys=True, separators=(",", ":"))
            ok = _sha256(text.encode()) == check
            rec = cls(chunk=int(body["chunk"]), part=str(body["part"]),
                      run_ids=tuple(int(r) for r in body["run_ids"]), rows=int(body["rows"]),
                      nbytes=int(body["bytes"]), sha256=str(body["sha256"]))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
            raise ResultsCorruptedError(f"{where}: unreadable index record ({err}).") from err
        if not ok:
            raise ResultsCorruptedError(f"{where}: index record fails its checksum.")
        return rec


class ResultsStore:
    """A results folder (see the module docstring for the layout and the guarantees).

    Args:
        root: The folder.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------------ paths

    @property
    def manifest_path(self) -> Path:
        """``<root>/manifest.json``."""
        return self.root / "manifest.json"

    @property
    def index_path(self) -> Path:
        """``<root>/index.jsonl``."""
        return self.root / "index.jsonl"

    @property
    def parts_dir(self) -> Path:
        """``<root>/parts``."""
        return self.root / "parts"

    def exists(self) -> bool:
        """Whether the folder holds a manifest."""
        return self.manifest_path.is_file()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the folder while writing (POSIX ``flock``).

        The operating system releases it when the process ends, even on SIGKILL, so a
        crashed sweep never leaves a stale lock.

        Raises:
            BlockingIOError: If another process holds the lock (a second ``run`` writing to
                the same folder would otherwise interleave index lines).
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise BlockingIOError(
                    f"{self.root} is being written by another rlhf-gbpm run (its lock is "
                    "held); wait for it to finish or stop it first."
                ) from err
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ manifest

    def write_manifest(self, manifest: dict) -> None:
        """Write the manifest atomically, with a SHA-256 over its content.

        Args:
            manifest: JSON-serializable content (``format`` and ``sha256`` are set here).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        body = dict(manifest)
        body.pop("sha256", None)
        body["format"] = FORMAT
        text = json.dumps(body, sort_keys=True, indent=1, allow_nan=True)
        body["sha256"] = _sha256(text.encode())
        atomic_write_bytes(self.manifest_path,
                           (json.dumps(body, sort_keys=True, indent=1, allow_nan=True)
                            + "\n").encode())

    def read_manifest(self) -> dict:
        """Read and verify the manifest.

        Returns:
            The manifest content.

        Raises:
            FileNotFoundError: If there is no manifest.
            ResultsCorruptedError: If it is not JSON, has another format or fails its checksum.
        """
        if not self.manifest_path.is_file():
            raise FileNotFoundError(f"{self.root} holds no results (no manifest.json).")
        raw = self.manifest_path.read_bytes()
        try:
            body = json.loads(raw.decode())
            check = body.pop("sha256")
        except (ValueError, KeyError, UnicodeDecodeError, AttributeError) as err:
            raise ResultsCorruptedError(f"{self.manifest_path}: unreadable manifest ({err}).") \
                from err
        text = json.dumps(body, sort_keys=True, indent=1, allow_nan=True)
        if _sha256(text.encode()) != check:
            raise ResultsCorruptedError(f"{self.manifest_path}: manifest fails its checksum.")
        if body.get("format") != FORMAT:
            raise ResultsCorruptedError(
                f"{self.manifest_path}: format {body.get('format')!r}, expected {FORMAT!r}."
            )
        return body

    def create(self, manifest: dict) -> None:
        """Start a new store: make the folders and write the manifest.

        Args:
            manifest: Manifest content (``started_at`` is added when missing).

        Raises:
            FileExistsError: If the folder already holds results.
        """
        if self.exists() or self.index_path.exists():
            raise FileExistsError(
                f"{self.root} already holds results; resume them with --resume or choose "
                "another --out folder."
            )
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        manifest = dict(manifest)
        manifest.setdefault("started_at", _now())
        manifest.setdefault("environment", environment_info())
        self.write_manifest(manifest)
        _fsync_dir(self.root)

    def update_manifest(self, **fields) -> dict:
        """Rewrite the manifest atomically with some fields changed.

        Args:
            **fields: Top-level fields to set.

        Returns:
            The new content.
        """
        body = self.read_manifest()
        body.update(fields)
        self.write_manifest(body)
        return body

    # ------------------------------------------------------------------ index

    def _read_index_bytes(self) -> tuple[list[bytes], bool]:
        """Complete lines of the index and whether a torn final line was found."""
        if not self.index_path.exists():
            return [], False
        raw = self.index_path.read_bytes()
        torn = bool(raw) and not raw.endswith(b"\n")
        lines = raw.split(b"\n")
        complete = lines[:-1]
        if torn:
            logger.debug("torn index tail of %d bytes", len(lines[-1]))
        return complete, torn

    def records(self, *, verify_parts: bool = True) -> dict[int, IndexRecord]:
        """The finished chunks, verified.

        Args:
            verify_parts: Also check each part's size and SHA-256 against its index line.

        Returns:
            Mapping chunk id -> record.

        Raises:
            ResultsCorruptedError: On a bad index line, a duplicated chunk, or a missing or
                altered part file.
        """
        lines, torn = self._read_index_bytes()
        if torn:
            warnings.warn(
                f"{self.index_path}: the last index record is incomplete (the sweep was "
                "interrupted while recording a chunk); it is ignored and that chunk counts "
                "as not finished.", GBPMWarning, stacklevel=2)
        out: dict[int, IndexRecord] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise ResultsCorruptedError(f"{self.index_path}:{number}: empty index line.")
            rec = IndexRecord.from_line(line, f"{self.index_path}:{number}")
            if rec.chunk in out:
                raise ResultsCorruptedError(
                    f"{self.index_path}:{number}: chunk {rec.chunk} is recorded twice."
                )
            if verify_parts:
                self._verify_part(rec)
            out[rec.chunk] = rec
        return out

    def _verify_part(self, rec: IndexRecord) -> bytes:
        path = self.parts_dir / rec.part
        if not path.is_file():
            raise ResultsCorruptedError(f"{path}: part file listed in the index is missing.")
        data = path.read_bytes()
        if len(data) != rec.nbytes:
            raise ResultsCorruptedError(
                f"{path}: size {len(data)} bytes, the index records {rec.nbytes} (truncated "
                "or altered)."
            )
        if _sha256(data) != rec.sha256:
            raise ResultsCorruptedError(f"{path}: SHA-256 differs from the index (altered).")
        return data

    def repair_tail(self) -> bool:
        """Cut an incomplete final index line left by a kill during an append.

        Returns:
            Whether something was cut.
        """
        if not self.index_path.exists():
            return False
        raw = self.index_path.read_bytes()
        if not raw or raw.endswith(b"\n"):
            return False
        keep = raw.rfind(b"\n") + 1
        with open(self.index_path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        logger.warning("cut an incomplete index record of %d bytes", len(raw) - keep)
        return True

    # ------------------------------------------------------------------ parts

    def write_part(self, chunk: int, frame: pd.DataFrame) -> IndexRecord:
        """Record a finished chunk: atomic part file, then its index line.

        Args:
            chunk: The chunk id.
            frame: Its rows (must hold a ``run_id`` column).

        Returns:
            The index record appended.
        """
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
        data = buf.getvalue().encode()
        name = f"part-{chunk:06d}.csv"
        atomic_write_bytes(self.parts_dir / name, data)
        run_ids = tuple(int(r) for r in pd.unique(frame["run_id"]))
        rec = IndexRecord(chunk=int(chunk), part=name, run_ids=run_ids, rows=len(frame),
                          nbytes=len(data), sha256=_sha256(data))
        line = rec.to_line()
        fd = os.open(self.index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            while written < len(line):  # pragma: no cover - short writes on odd filesystems
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        return rec

    def load(self) -> pd.DataFrame:
        """The results table of every finished chunk, verified.

        Returns:
            Tidy DataFrame sorted by ``run_id`` and ``t`` (empty when nothing finished).

        Raises:
            ResultsCorruptedError: If the manifest, the index or a part fails verification.
        """
        manifest = self.read_manifest()
        records = self.records(verify_parts=False)
        expected = manifest.get("num_chunks")
        if manifest.get("finished_at") and isinstance(expected, int) and \
                len(records) < expected:
            raise ResultsCorruptedError(
                f"{self.index_path}: the manifest records a finished sweep of {expected} "
                f"chunks, the index lists {len(records)} (truncated)."
            )
        frames = []
        for rec in sorted(records.values(), key=lambda r: r.chunk):
            data = self._verify_part(rec)
            try:
                frame = pd.read_csv(io.BytesIO(data))
            except (ValueError, pd.errors.ParserError) as err:  # pragma: no cover
                raise ResultsCorruptedError(f"{rec.part}: unreadable CSV ({err}).") from err
            if len(frame) != rec.rows:
                raise ResultsCorruptedError(
                    f"{rec.part}: {len(frame)} rows, the index records {rec.rows}."
                )
            for name in COLUMNS[1:]:  # float columns stay float in partial tables
                if name in frame:
                    frame[name] = frame[name].astype(float)
            frames.append(frame)
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        return table.sort_values(["run_id", "t"], kind="stable").reset_index(drop=True)


def load_results(path: str | Path) -> pd.DataFrame:
    """Load a results folder as a tidy DataFrame (see :meth:`ResultsStore.load`).

    Args:
        path: The results folder (``run --out``).

    Returns:
        One row per run x checkpoint.
    """
    return ResultsStore(path).load()

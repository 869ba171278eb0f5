"""Content hashes that tie a model to the data and code it was trained from (lineage for reports and promotion)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CODE_SUFFIXES = (".py",)
"""What counts as code in a step's folder: steps drop scratch files (mlruns/, *.db, caches) beside it."""


def _digest(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        # Length-prefixed, so ("ab", "c") and ("a", "bc") hash differently.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def csv_files(path: Path) -> list[Path]:
    """The CSV file itself, or every *.csv in a folder in name order (as taxi_schema.load_taxi_csv reads)."""
    return [path] if path.is_file() else sorted(path.glob("*.csv"))


def data_sha256(*paths: Path) -> str:
    """SHA-256 over the bytes of the CSVs at `paths`, in the order given (names and folders do not count)."""
    files = [file for path in paths for file in csv_files(Path(path))]
    if not files:
        raise FileNotFoundError(f"no CSV file at {', '.join(str(path) for path in paths)} to fingerprint")
    return _digest(file.read_bytes() for file in files)


def code_sha256(folder: Path) -> str:
    """SHA-256 over the relative names and bytes of the source files under `folder` (caches skipped)."""
    root = Path(folder)
    files = sorted(
        file
        for file in root.rglob("*")
        if file.is_file() and file.suffix in CODE_SUFFIXES and "__pycache__" not in file.parts
    )
    if not files:
        raise FileNotFoundError(f"no source file ({', '.join(CODE_SUFFIXES)}) under {root} to fingerprint")
    return _digest(
        part for file in files for part in (file.relative_to(root).as_posix().encode(), file.read_bytes())
    )

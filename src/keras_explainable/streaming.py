"""Streaming explanations to `.npy` files, resumably.

`NpyWriter` appends each batch's maps, scores and targets to `maps.npy`,
`scores.npy` and `targets.npy` (for a model with several inputs, one maps
file per explained input: `maps_<input name>.npy`) in numpy's own format, so the files open with
`np.load(path, mmap_mode="r")` at any time. Each file's header is written with
a fixed size and rewritten after every batch with the new row count; a small
`progress.json`, replaced atomically after the data is flushed, records how
many batches are complete. A resumed run truncates any partly written rows and
continues after the last complete batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NpyWriter"]

_NAMES = ("maps", "scores", "targets")
_HEADER_SIZE = 256  # bytes, a multiple of 64 as numpy recommends
_PROGRESS = "progress.json"


def _header(dtype: np.dtype, shape: tuple) -> bytes:
    """A version 1.0 `.npy` header of exactly `_HEADER_SIZE` bytes."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = "{" + f"'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, " + "}"
    prefix = b"\x93NUMPY\x01\x00"
    body_size = _HEADER_SIZE - len(prefix) - 2
    body = text.ljust(body_size - 1) + "\n"
    if len(body) != body_size:
        raise ValueError(f"array shape {shape} is too large for the .npy header")
    return prefix + body_size.to_bytes(2, "little") + body.encode("latin1")


class NpyWriter:
    """Appends explanation batches to `.npy` files in a folder; resumable.

    Use `NpyWriter.open(directory, resume=..., signature=...)`; the engine
    calls `write` for every batch, then `finish`.

    Attributes:
        directory: the output folder.
        size: the number of samples written so far.
        completed_batches: the number of batches written so far.
        finished: whether the run in the folder is complete (a re-opened
            finished run has nothing left to write).
    """

    def __init__(
        self,
        directory: Path,
        signature: dict,
        size: int,
        completed_batches: int,
        rows: dict,
        finished: bool = False,
        names: tuple[str, ...] = _NAMES,
    ) -> None:
        self.directory = directory
        self.signature = signature
        self.size = size
        self.completed_batches = completed_batches
        self.finished = finished
        self._rows = rows  # name -> (dtype str, row shape) once known
        self.names = names

    @classmethod
    def open(
        cls, directory: Any, *, resume: bool, signature: dict, names: tuple[str, ...] = _NAMES
    ) -> NpyWriter:
        """Open `directory` for a new run, to resume an unfinished one, or to read a finished one.

        A finished run made with the same `signature` is opened as it is
        (`finished` is True): its files are the results.

        Args:
            directory: the output folder (created if missing).
            resume: continue (or read back) a run found there.
            signature: what identifies the run (method, options, inputs).
            names: the arrays each batch brings, in order, each written to
                `<name>.npy` (default maps, scores, targets).

        Raises:
            NotADirectoryError: `directory` is a file.
            FileExistsError: a run exists there and `resume` is False.
            ValueError: the existing run was made with other inputs or options.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"Output path {str(directory)!r} is a file, not a folder.")
        directory.mkdir(parents=True, exist_ok=True)
        progress_path = directory / _PROGRESS
        if not progress_path.exists():
            if any((directory / f"{name}.npy").exists() for name in names):
                raise FileExistsError(
                    f"{str(directory)!r} already holds .npy files not written by a resumable "
                    "run; choose an empty folder."
                )
            return cls(directory, signature, 0, 0, {}, names=names)
        progress = json.loads(progress_path.read_text())
        if not resume:
            state = "a finished run" if progress.get("finished") else "an unfinished run"
            raise FileExistsError(
                f"{str(directory)!r} already holds {state}; pass resume=True to continue "
                "it (a finished run is then read back, not recomputed), or choose another "
                "folder."
            )
        if progress["signature"] != json.loads(json.dumps(signature)):
            raise ValueError(
                f"The run in {str(directory)!r} was made with other inputs or options "
                f"({progress['signature']}); it cannot be resumed with {signature}."
            )
        rows = {name: (dtype, tuple(shape)) for name, (dtype, shape) in progress["rows"].items()}
        writer = cls(
            directory,
            signature,
            progress["size"],
            progress["completed_batches"],
            rows,
            finished=bool(progress.get("finished")),
            names=names,
        )
        if not writer.finished:
            writer._truncate()
        return writer

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.npy"

    def _row_bytes(self, name: str) -> int:
        dtype, shape = self._rows[name]
        return int(np.dtype(dtype).itemsize * np.prod(shape, dtype=np.int64))

    def _truncate(self) -> None:
        """Drop rows written after the last complete batch; fix the headers."""
        for name in self.names:
            if name not in self._rows:
                continue
            with open(self._path(name), "r+b") as handle:
                handle.truncate(_HEADER_SIZE + self.size * self._row_bytes(name))
                self._write_header(handle, name)

    def _write_header(self, handle: Any, name: str) -> None:
        dtype, shape = self._rows[name]
        handle.seek(0)
        handle.write(_header(np.dtype(dtype), (self.size, *shape)))

    def write(self, start: int, *arrays: np.ndarray) -> None:
        """Append one batch (one array per name, in order), then record it as complete."""
        if start != self.size:
            raise RuntimeError(
                f"batches must arrive in order: expected sample {self.size}, got {start}"
            )
        parts = dict(zip(self.names, arrays, strict=True))
        for name, part in parts.items():
            part = np.ascontiguousarray(part)
            if name not in self._rows:
                self._rows[name] = (part.dtype.str, tuple(part.shape[1:]))
                with open(self._path(name), "wb") as handle:
                    handle.write(_header(part.dtype, (0, *part.shape[1:])))
            with open(self._path(name), "r+b") as handle:
                handle.seek(0, os.SEEK_END)
                handle.write(part.tobytes())
                handle.flush()
                os.fsync(handle.fileno())
        self.size += len(arrays[0])
        self.completed_batches += 1
        for name in self.names:
            with open(self._path(name), "r+b") as handle:
                self._write_header(handle, name)
        self._save_progress(finished=False)

    def _save_progress(self, finished: bool) -> None:
        progress = {
            "signature": self.signature,
            "size": self.size,
            "completed_batches": self.completed_batches,
            "finished": finished,
            "rows": {name: [dtype, list(shape)] for name, (dtype, shape) in self._rows.items()},
        }
        temporary = self.directory / (_PROGRESS + ".tmp")
        temporary.write_text(json.dumps(progress, indent=1))
        os.replace(temporary, self.directory / _PROGRESS)

    def finish(self) -> None:
        """Mark the run as finished."""
        self.finished = True
        self._save_progress(finished=True)

    def arrays(self) -> list[np.ndarray]:
        """The written arrays (maps, scores and targets) as read-only memory maps."""
        return [np.load(self._path(name), mmap_mode="r") for name in self.names]

"""Streaming explanations to `.npy` files, resumably.

`NpyWriter` appends each batch's maps, scores and targets to `maps.npy`,
`scores.npy` and `targets.npy` (for a model with several inputs, one maps
file per explained input: `maps_<input name>.npy`) in numpy's own format, so the files open with
`np.load(path, mmap_mode="r")` at any time. Each file's header is written with
a fixed size and rewritten after every batch with the new row count; a small
`progress.json`, replaced atomically after the data is flushed, records how
many batches are complete, and the run's signature (what its results depend
on: `keras_explainable.signature`). A resumed run truncates any partly
written rows and continues after the last complete batch; a run re-opened
with another signature is refused, naming what differs. Warnings about the
run's maps are appended to `run.log`.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_explainable.errors import RunMismatchError
from keras_explainable.signature import differences

__all__ = ["NpyWriter"]

_NAMES = ("maps", "scores", "targets")
_HEADER_SIZE = 256  # bytes, a multiple of 64 as numpy recommends
_PROGRESS = "progress.json"
_LOG = "run.log"
# What a signature must record to be compared (older runs recorded less).
_SIGNED = ("options", "targets", "weights")
_LISTED_DIFFERENCES = 6


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
        batching: how the run's inputs are cut into batches (`batch_size`).

    Besides the `.npy` files and `progress.json`, warnings about the run's
    maps (`BlankMapWarning`, ...) are appended to `run.log` (see `log`).
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
        batching: dict | None = None,
    ) -> None:
        self.directory = directory
        self.signature = signature
        self.size = size
        self.completed_batches = completed_batches
        self.finished = finished
        self._rows = rows  # name -> (dtype str, row shape) once known
        self.names = names
        self.batching = batching or {}

    @classmethod
    def open(
        cls,
        directory: Any,
        *,
        resume: bool,
        signature: dict,
        batching: dict | None = None,
        names: tuple[str, ...] = _NAMES,
    ) -> NpyWriter:
        """Open `directory` for a new run, to resume an unfinished one, or to read a finished one.

        A finished run made with the same `signature` is opened as it is
        (`finished` is True): its files are the results. An unfinished one
        continues after its last complete batch, which needs the same
        `batching` too.

        Args:
            directory: the output folder (created if missing).
            resume: continue (or read back) a run found there; False
                replaces it with a new run (its files are deleted).
            signature: what the results depend on (see
                `keras_explainable.signature`): the method and its options,
                the inputs' shape, the targets, the model's weights.
            batching: how the inputs are cut into batches (the batch size),
                which an unfinished run needs to resume but which does not
                change the results of a finished one.
            names: the arrays each batch brings, in order, each written to
                `<name>.npy` (default maps, scores, targets).

        Raises:
            NotADirectoryError: `directory` is a file.
            FileExistsError: the folder holds `.npy` files not written by a run.
            RunMismatchError: the existing run was made with other inputs,
                options, targets or model weights (or records none: an older
                run), or is unfinished and was cut into other batches. The
                message names what differs.
        """
        directory = Path(directory)
        batching = batching or {}
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"Output path {str(directory)!r} is a file, not a folder.")
        directory.mkdir(parents=True, exist_ok=True)
        progress_path = directory / _PROGRESS
        if progress_path.exists() and not resume:
            _discard(directory, json.loads(progress_path.read_text()), names)
        if not progress_path.exists():
            if any((directory / f"{name}.npy").exists() for name in names):
                raise FileExistsError(
                    f"{str(directory)!r} already holds .npy files not written by a resumable "
                    "run; choose an empty folder."
                )
            return cls(directory, signature, 0, 0, {}, names=names, batching=batching)
        progress = json.loads(progress_path.read_text())
        finished = bool(progress.get("finished"))
        _check_signature(directory, progress.get("signature", {}), signature)
        recorded_batching = progress.get("batching", {})
        if not finished and recorded_batching != json.loads(json.dumps(batching)):
            raise RunMismatchError(
                f"The unfinished run in {str(directory)!r} was cut into batches of "
                f"{_listed(recorded_batching)}; it resumes after its last complete batch, so "
                f"it must go on with the same batches, not {_listed(batching)}. Use the "
                "same batch size, write to another directory, or pass resume=False to "
                "replace the run there."
            )
        rows = {name: (dtype, tuple(shape)) for name, (dtype, shape) in progress["rows"].items()}
        writer = cls(
            directory,
            signature,
            progress["size"],
            progress["completed_batches"],
            rows,
            finished=finished,
            names=names,
            batching=recorded_batching,
        )
        if not writer.finished:
            writer._truncate()
        return writer

    def log(self, message: str) -> None:
        """Append a line (a warning about the run, say) to the run's `run.log`."""
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        with open(self.directory / _LOG, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")

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
            "batching": self.batching,
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


def _discard(directory: Path, progress: dict, names: tuple[str, ...]) -> None:
    """Delete the files of the run in `directory` (and nothing else)."""
    written = {*progress.get("rows", {}), *names}
    for path in (
        *(directory / f"{name}.npy" for name in sorted(written)),
        directory / _LOG,
        directory / _PROGRESS,
    ):
        path.unlink(missing_ok=True)


def _shown(value: Any) -> str:
    """A short text for a described value in a message."""
    if isinstance(value, dict) and "$array" in value:
        shape = "x".join(str(size) for size in value["shape"])
        return f"an array ({shape}, sha256 {value['$array'][:12]})"
    if isinstance(value, dict) and "$function" in value:
        code = value.get("code")
        return f"the function {value['$function']}" + (f" (code {code[:12]})" if code else "")
    if isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef"):
        return value[:12]
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _listed(batching: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in batching.items()) or "(unrecorded)"


def _check_signature(directory: Path, recorded: dict, signature: dict) -> None:
    """Raise `RunMismatchError` naming what differs between a run's signature and this call's."""
    ways_out = (
        "Its files are left as they are: write to another directory, or pass "
        "resume=False to replace the run there."
    )
    missing = [key for key in _SIGNED if key not in recorded]
    if missing:
        raise RunMismatchError(
            f"The run in {str(directory)!r} was made with other inputs or options, or "
            f"cannot tell: it records no {', '.join(missing)} (it was written by an older "
            f"keras-explainable), so its results cannot be matched with this call. {ways_out}"
        )
    signature = json.loads(json.dumps(signature))
    if recorded.get("method") != signature["method"]:
        # Another method: its options are another list altogether.
        found = [("method", recorded.get("method"), signature["method"])]
    else:
        found = differences(recorded, signature)
    if not found:
        return
    described = []
    for path, then, now in found:
        if path == "weights":
            described.append(
                f"the model's weights (fingerprint {_shown(then)} in the run, {_shown(now)} "
                "now: weights set, trained or loaded since, or another model)"
            )
            continue
        name = path.removeprefix("options.")
        if path.startswith("targets."):
            name = "the targets (y), " + path.removeprefix("targets.").removeprefix("plan.")
        described.append(f"{name}: {_shown(then)} in the run, {_shown(now)} now")
    if len(described) > _LISTED_DIFFERENCES:
        more = len(described) - _LISTED_DIFFERENCES
        described = [*described[:_LISTED_DIFFERENCES], f"and {more} more"]
    raise RunMismatchError(
        f"The run in {str(directory)!r} was made with other inputs or options; it differs "
        f"from this call in {'; '.join(described)}. {ways_out}"
    )

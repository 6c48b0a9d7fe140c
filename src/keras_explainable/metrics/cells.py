"""The finished cells of an evaluation, one file each, for runs that resume.

`evaluate(..., cache=folder)` writes each finished (method, metric) cell to
`folder/<method>/<metric>.npz` and each method's explanation summary (the
gallery maps and the time per image) to `folder/<method>/explanation.npz`.
Each file is written to a temporary file and moved into place with
`os.replace`, so a run stopped part-way leaves only whole files. A cell is
reused when its key matches: a digest of the inputs, targets, ground truth,
the model's weights, and the method's and the metric's settings (their
`repr`, which numpy abbreviates for large array options).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from keras_explainable.metrics.result import MetricResult

__all__ = ["CellStore", "data_digest"]


def data_digest(*arrays: Any) -> str:
    """Return a hex digest of arrays (None, numbers and ints allowed)."""
    digest = hashlib.sha1()
    for array in arrays:
        if array is None:
            digest.update(b"none;")
            continue
        values = np.ascontiguousarray(np.asarray(array))
        digest.update(f"{values.dtype.str}{values.shape};".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def model_digest(model: Any) -> str:
    """Return a hex digest of a Keras model's weights."""
    return data_digest(*(np.asarray(w) for w in model.get_weights()))


def _settings(configured: Any) -> str:
    """An explainer's or metric's settings: its `repr`, less `verbose` (no effect)."""
    return re.sub(r"\bverbose=('auto'|\d)(, )?", "", repr(configured))


def _file_name(name: str) -> str:
    """A file name for a method or metric name: unsafe characters spelled out."""
    safe = "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in name)
    return safe.lstrip(".") or "%2e"


def _write_atomic(path: Path, arrays: dict[str, Any]) -> None:
    """Write `arrays` as `path` (.npz): to a temporary file, then `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays of `path` if it exists and was written under `key`, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError):
        return None
    if str(arrays.get("_key", "")) != key:
        return None
    return arrays


def _encode(result: MetricResult) -> dict[str, Any]:
    """A result's fields as arrays (None as a missing key, listed in `_none`)."""
    kind = type(result)
    arrays: dict[str, Any] = {"_kind": f"{kind.__module__}:{kind.__qualname__}"}
    missing = []
    for field in attrs.fields(kind):
        value = getattr(result, field.name)
        if value is None:
            missing.append(field.name)
        else:
            arrays[field.name] = np.asarray(value)
    arrays["_none"] = np.asarray(missing, dtype=str)
    return arrays


def _decode(arrays: dict[str, np.ndarray]) -> MetricResult:
    """The result `_encode` stored; a plain `MetricResult` for an unknown kind."""
    module, _, qualname = str(arrays["_kind"]).partition(":")
    kind: Any = MetricResult
    if module.startswith("keras_explainable."):
        found = getattr(importlib.import_module(module), qualname, None)
        if isinstance(found, type) and issubclass(found, MetricResult):
            kind = found
    values = {
        field.name: (
            None
            if field.name in set(arrays["_none"].tolist())
            else arrays[field.name].item()
            if arrays[field.name].ndim == 0
            else arrays[field.name]
        )
        for field in attrs.fields(kind)
    }
    return kind(**values)


@attrs.define
class CellStore:
    """The cells of one evaluation in a folder.

    Args:
        folder: where the cells are kept.
        data: the digest of the inputs, targets and ground truth.
    """

    folder: Path = attrs.field(converter=Path)
    data: str

    def _key(self, *parts: str) -> str:
        return hashlib.sha1("\0".join((self.data, *parts)).encode()).hexdigest()

    def _path(self, method: str, name: str) -> Path:
        return self.folder / _file_name(method) / f"{_file_name(name)}.npz"

    def explanation_key(self, method: str, explainer: Any) -> str:
        """The key of a method's explanation: data, name, settings and weights."""
        return self._key(method, _settings(explainer), model_digest(explainer.model))

    def cell_key(self, explanation_key: str, metric: Any) -> str:
        """The key of one cell: its explanation's key and the metric's settings."""
        return self._key(explanation_key, _settings(metric))

    def load_explanation(self, method: str, key: str) -> tuple[np.ndarray, float] | None:
        """The stored `(gallery maps, seconds per image)`, or None."""
        arrays = _read(self._path(method, "explanation"), key)
        if arrays is None:
            return None
        return arrays["maps"], float(arrays["seconds"])

    def save_explanation(self, method: str, key: str, maps: np.ndarray, seconds: float) -> None:
        """Store a method's gallery maps and its time per image."""
        self._write(method, "explanation", key, {"maps": maps, "seconds": seconds})

    def load_cell(self, method: str, column: str, key: str) -> MetricResult | None:
        """The stored result of one cell, or None."""
        arrays = _read(self._path(method, f"metric-{column}"), key)
        return None if arrays is None else _decode(arrays)

    def save_cell(self, method: str, column: str, key: str, result: MetricResult) -> None:
        """Store the result of one finished cell."""
        self._write(method, f"metric-{column}", key, _encode(result))

    def cell_path(self, method: str, column: str) -> Path:
        """The file of one cell."""
        return self._path(method, f"metric-{column}")

    def _write(self, method: str, name: str, key: str, arrays: dict[str, Any]) -> None:
        _write_atomic(self._path(method, name), {**arrays, "_key": np.asarray(key)})

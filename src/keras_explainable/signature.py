"""Run signatures: what a streamed run's results depend on, described stably.

`explain_to_disk` records a signature with a run and refuses to re-open the
run with another one (`keras_explainable.errors.RunMismatchError`). The
signature is derived, not listed by hand:

- `options`: every constructor field of the explainer (an attrs class), and
  of the explainers a decorator wraps, each value described by `describe`;
  fields marked with `RESULT_NEUTRAL` metadata (verbosity, the sizes of the
  chunks a loop runs in, the model, which `model_fingerprint` covers) are
  left out, so a new method's options are covered without any change here;
- `targets`: the validated target plan, described the same way;
- `weights`: `model_fingerprint`, a SHA-256 of the model's weights.

`describe` turns a value into JSON data that is equal for equal values
across processes: arrays (numpy, tensors, variables) by a hash of their
bytes, attrs instances by their fields, functions by qualified name and a
hash of their code, closure and defaults.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import types
from collections.abc import Mapping
from typing import Any

import attrs
import keras
import numpy as np
import tensorflow as tf

__all__ = ["RESULT_NEUTRAL", "describe", "differences", "model_fingerprint", "options"]

#: attrs field metadata: the field does not change a run's results (it is
#: left out of run signatures).
RESULT_NEUTRAL = types.MappingProxyType({"keras_explainable.result_neutral": True})
_NEUTRAL_KEY = next(iter(RESULT_NEUTRAL))

_DEPTH = 8  # how deep `describe` follows nested values (closures of closures, ...)


def _qualified_name(value: Any) -> str:
    module = getattr(value, "__module__", None) or "?"
    return f"{module}.{getattr(value, '__qualname__', type(value).__qualname__)}"


def _array(value: Any) -> dict:
    array = np.ascontiguousarray(keras.ops.convert_to_numpy(value))
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    return {"$array": digest, "dtype": array.dtype.str, "shape": list(array.shape)}


def _code_digest(code: types.CodeType) -> str:
    """A hash of what a function does: its bytecode, constants and names (not its lines)."""
    digest = hashlib.sha256(code.co_code)
    for constant in code.co_consts:
        text = _code_digest(constant) if isinstance(constant, types.CodeType) else repr(constant)
        digest.update(text.encode())
    digest.update(repr(code.co_names).encode())
    return digest.hexdigest()


def _fields(value: Any, depth: int) -> dict:
    """The public, result-changing attrs fields of `value`, described."""
    described = {}
    for field in attrs.fields(type(value)):
        if not field.init or field.name.startswith("_") or field.metadata.get(_NEUTRAL_KEY):
            continue
        described[field.name] = describe(getattr(value, field.name), depth)
    return described


def describe(value: Any, depth: int = _DEPTH) -> Any:
    """JSON data describing `value`, equal for equal values in any process.

    Args:
        value: an option's value: None, a bool, number or string, a
            sequence or mapping of values, an array (numpy, tensor, Keras or
            TensorFlow variable), an attrs instance (an explainer, a target
            object, a baseline), a Keras layer, or a callable.
        depth: how deep to follow nested values.

    Returns:
        Numbers, strings, lists and dicts: arrays as `{"$array": sha256,
        "dtype", "shape"}`; attrs instances as their type (`"$type"`) and public init
        fields (those marked `RESULT_NEUTRAL` left out); a Keras layer by
        type and name; a function by qualified name and a hash of its code,
        defaults and closure (so editing a lambda counts as a change; the
        globals it reads do not); other objects by type and their
        attributes, or their `repr`.

    Example:
        >>> describe({"steps": 8, "baseline": np.zeros(3)})["baseline"]["shape"]
        [3]
    """
    if depth < 0:
        return {"$type": _qualified_name(type(value))}
    depth -= 1
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # NaN is not equal to itself: compare non-finite numbers as text.
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, (np.ndarray, tf.Tensor, tf.Variable, keras.Variable)):
        return _array(value)
    if isinstance(value, (list, tuple)):
        return [describe(item, depth) for item in value]
    if isinstance(value, Mapping):
        return {str(key): describe(item, depth) for key, item in sorted(value.items(), key=str)}
    if isinstance(value, keras.layers.Layer):
        return {"$type": _qualified_name(type(value)), "name": value.name}
    if attrs.has(type(value)):
        return {"$type": _qualified_name(type(value)), **_fields(value, depth)}
    if isinstance(value, functools.partial):
        return {
            "$partial": describe(value.func, depth),
            "args": describe(value.args, depth),
            "keywords": describe(value.keywords, depth),
        }
    if isinstance(value, types.MethodType):
        return {
            "$method": describe(value.__func__, depth),
            "of": _qualified_name(type(value.__self__)),
        }
    if isinstance(value, types.FunctionType):
        closure = [cell.cell_contents for cell in value.__closure__ or ()]
        return {
            "$function": _qualified_name(value),
            "code": _code_digest(value.__code__),
            "defaults": describe(value.__defaults__, depth),
            "closure": describe(closure, depth),
        }
    if callable(value) and not hasattr(value, "__dict__"):  # builtins, numpy ufuncs
        return {"$function": _qualified_name(value)}
    if hasattr(value, "__dict__"):
        return {"$type": _qualified_name(type(value)), "state": describe(vars(value), depth)}
    return {"$type": _qualified_name(type(value)), "repr": repr(value)}


def options(explainer: Any) -> dict:
    """The described result-changing options of an explainer (an attrs instance).

    A decorator's wrapped explainer is one of its fields, so it is described
    (recursively) with its own options.
    """
    return _fields(explainer, _DEPTH)


def _variables(model: Any, depth: int = 3) -> list:
    """The weights of a model: a Keras model or layer, a `SplitModel`, a callable.

    A plain callable's are those of the Keras models it reaches (in its
    closure or its attributes), `depth` levels deep.
    """
    if depth < 0:
        return []
    if isinstance(model, keras.layers.Layer):
        return list(model.weights)
    if attrs.has(type(model)):
        parts = [getattr(model, field.name) for field in attrs.fields(type(model))]
    elif isinstance(model, types.FunctionType):
        parts = [cell.cell_contents for cell in model.__closure__ or ()]
    elif callable(model) and hasattr(model, "__dict__"):
        parts = list(vars(model).values())
    else:
        return []
    return [variable for part in parts for variable in _variables(part, depth - 1)]


def model_fingerprint(model: Any) -> str:
    """A SHA-256 of the model's weights (their values, dtypes and shapes, in order).

    Names are left out, so a model rebuilt with the same weights has the same
    fingerprint. A plain callable is fingerprinted by the weights of the
    Keras models it holds (in its closure or attributes), and by its
    description (`describe`) when it holds none.

    Args:
        model: a Keras model, a `SplitModel`, or a callable.

    Returns:
        The hexadecimal digest.
    """
    digest = hashlib.sha256()
    variables = _variables(model)
    for variable in variables:
        array = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    if not variables:
        digest.update(json.dumps(describe(model), sort_keys=True).encode())
    return digest.hexdigest()


def differences(recorded: Any, current: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """The `(dotted path, recorded value, current value)` of each difference.

    Args:
        recorded: a signature as read back from JSON.
        current: the signature of this call, as JSON data.
        path: the prefix of the paths (for the recursion).

    Returns:
        The differences, in the order of the keys; a key missing on one side
        has the value `"(absent)"` there.
    """
    if _branch(recorded) and _branch(current):
        found = []
        for key in [*recorded, *(key for key in current if key not in recorded)]:
            found += differences(
                recorded.get(key, "(absent)"),
                current.get(key, "(absent)"),
                f"{path}.{key}" if path else key,
            )
        return found
    return [] if recorded == current else [(path, recorded, current)]


def _branch(value: Any) -> bool:
    """Whether `differences` looks inside a described value (not an array's or function's)."""
    return isinstance(value, dict) and not ({"$array", "$function"} & set(value))

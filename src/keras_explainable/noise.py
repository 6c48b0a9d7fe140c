"""Seeded randomness that is a function of each sample, not of its batch.

SmoothGrad's noisy copies, Integrated Gradients' uniform baselines and
GradientSHAP's baselines, path points and noise all draw random numbers
inside the compiled step (RISE's masks too, from the seed and the mask's
number alone: every sample gets the same masks). Each sample's numbers come from a hash of the seed,
a stream (which copy, which draw, what for) and a fingerprint of the sample's
own values, so a sample gets the same numbers in any batch, at any position,
on any replica, with or without XLA: maps do not depend on the batch size.

Integer hashing instead of TensorFlow's stateless random ops: those give
other numbers under XLA when their seed is computed in the graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

__all__ = [
    "BACKGROUND_CHOICE",
    "COALITION_ORDER",
    "COALITION_SIZE",
    "INPUT_NOISE",
    "METRIC_NOISE",
    "METRIC_SUBSET",
    "PATH_POINT",
    "RISE_MASK",
    "SMOOTHGRAD_NOISE",
    "UNIFORM_BASELINE",
    "hash32",
    "hashed_normal",
    "hashed_normal_by_inverse_cdf",
    "hashed_uniform",
    "noisy_copies",
    "noisy_copy",
    "sample_keys",
    "stream_key",
]

_WORD = 2**32

# The purposes of the random streams (see `stream_key`), one per use, so that
# one seed gives unrelated numbers to each.
SMOOTHGRAD_NOISE = 0
"""SmoothGrad's noisy copies (`noisy_copy`'s default)."""
UNIFORM_BASELINE = 1
"""The 'uniform' baseline of Integrated Gradients and GradientSHAP."""
BACKGROUND_CHOICE = 2
"""GradientSHAP: which background sample a draw starts from."""
PATH_POINT = 3
"""GradientSHAP: where on its path a draw's gradient is taken."""
INPUT_NOISE = 4
"""GradientSHAP: the noise added to the input of a draw."""
COALITION_SIZE = 5
"""KernelSHAP and LIME: how many segments a coalition keeps (or drops)."""
COALITION_ORDER = 6
"""KernelSHAP and LIME: which segments a coalition keeps."""
RISE_MASK = 7
"""RISE: the cells and shift of a random mask (a function of the seed and mask number)."""
METRIC_SUBSET = 8
"""FaithfulnessCorrelation and MuFidelity: which features a run removes."""
METRIC_NOISE = 9
"""Infidelity and the sensitivity metrics: the noise of a perturbation."""


def hash32(value: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer hash (lowbias32).

    Args:
        value: an int64 tensor (any values; taken modulo 2^32).

    Returns:
        int64 hashes in [0, 2^32), same shape.
    """
    return tf.cast(_hash32_bits(tf.cast(value % _WORD, tf.uint32)), tf.int64)


def _hash32_bits(value: tf.Tensor) -> tf.Tensor:
    """lowbias32 of uint32 `value`, in uint32 arithmetic (products wrap modulo 2^32).

    The same numbers as the exact int64 arithmetic it replaces, several times
    faster: no 64-bit products or remainders.
    """
    value ^= tf.bitwise.right_shift(value, 16)
    value *= tf.constant(0x7FEB352D, tf.uint32)
    value ^= tf.bitwise.right_shift(value, 15)
    value *= tf.constant(0x846CA68B, tf.uint32)
    value ^= tf.bitwise.right_shift(value, 16)
    return value


def _hashed_fractions(keys: tf.Tensor, counter: tf.Tensor) -> tf.Tensor:
    """`(h + 0.5) / 2^32` for `h = hash32(keys[:, None] + counter)`, in (0, 1).

    Args:
        keys: `(N,)` int64 keys.
        counter: `(1, K)` uint32 stream positions.

    Returns:
        `(N, K)` float32 numbers.
    """
    base = tf.cast(tf.reshape(keys, [-1, 1]) % _WORD, tf.uint32)
    return (tf.cast(_hash32_bits(base + counter), tf.float32) + 0.5) / _WORD


def stream_key(seed: int, index: Any, purpose: int = 0) -> tf.Tensor:
    """The int64 key of random stream `index` for `seed` and `purpose`.

    Args:
        seed: the user's integer seed.
        index: the copy or draw number (an int, or an int64 tensor of them).
        purpose: what the numbers are for, one of this module's constants
            (`SMOOTHGRAD_NOISE`, ...), so that one seed gives unrelated numbers
            to each use.

    Returns:
        int64 keys in [0, 2^32), the shape of `index`.
    """
    key = hash32(tf.constant(seed % _WORD, tf.int64) + hash32(tf.cast(index, tf.int64)))
    if purpose:
        key = hash32(key ^ hash32(tf.constant(purpose, tf.int64)))
    return key


def sample_keys(inputs: tf.Tensor) -> tf.Tensor:
    """`(N,)` int64 fingerprints of the samples' values, in [0, 2^32).

    Seeding each sample's numbers with its own fingerprint makes them a
    function of the sample alone: they do not depend on the batch a sample
    lands in, its position there, or the replica that explains it.
    """
    flat = tf.reshape(tf.cast(inputs, tf.float32), [tf.shape(inputs)[0], -1])
    bits = tf.cast(tf.bitcast(flat, tf.int32), tf.int64) % 65521
    weights = tf.range(tf.shape(flat)[1], dtype=tf.int64) % 65519 + 1
    return hash32(tf.reduce_sum(bits * weights, axis=1))


def hashed_uniform(shape: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    """Uniform float32 numbers in (0, 1) of `shape`, one stream per sample key.

    Args:
        shape: the shape `(N, ...)`, a 1-D int tensor.
        keys: `(N,)` int64 keys, one per sample.

    Returns:
        `(N, ...)` float32 numbers, each `(h + 0.5) / 2^32` for a 32-bit hash `h`.
    """
    size = tf.reduce_prod(shape[1:])
    counter = tf.cast(tf.range(size), tf.uint32)[None]
    return tf.reshape(_hashed_fractions(keys, counter), shape)


def hashed_normal(shape: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    """Standard normal float32 noise of `shape`, one stream per sample key.

    Box-Muller on two hashed 32-bit uniforms per element.

    Args:
        shape: the shape `(N, ...)`, a 1-D int tensor.
        keys: `(N,)` int64 keys, one per sample.

    Returns:
        `(N, ...)` float32 standard normal numbers.
    """
    size = tf.reduce_prod(shape[1:])
    counter = 2 * tf.cast(tf.range(size), tf.uint32)[None]
    first = _hashed_fractions(keys, counter)
    second = _hashed_fractions(keys, counter + 1)
    normal = tf.sqrt(-2.0 * tf.math.log(first)) * tf.cos(2.0 * np.pi * second)
    return tf.reshape(normal, shape)


#: The largest float32 below 1: `2u - 1` is clipped to it, which rounds to
#: +-1 for the outermost hashes (a tail cut at 5.3 standard deviations).
_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))


def hashed_normal_by_inverse_cdf(shape: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    """Standard normal float32 noise of `shape`, one stream per sample key, by the inverse CDF.

    `sqrt(2) * erfinv(2u - 1)` of one hashed 32-bit uniform `u` per element:
    the same distribution as `hashed_normal` (other numbers), about four
    times faster under XLA, where the cosine and logarithm of Box-Muller
    dominate its cost. Tails beyond 5.3 standard deviations (a probability of
    about 1e-7) are cut to 5.3. Under XLA and outside it, the numbers agree
    to about 2e-5 (their `erfinv` differ), not bit for bit.

    Args:
        shape: the shape `(N, ...)`, a 1-D int tensor.
        keys: `(N,)` int64 keys, one per sample.

    Returns:
        `(N, ...)` float32 standard normal numbers.
    """
    signed = tf.clip_by_value(2.0 * hashed_uniform(shape, keys) - 1.0, -_BELOW_ONE, _BELOW_ONE)
    return np.sqrt(2.0) * tf.math.erfinv(signed)


def noisy_copy(
    inputs: tf.Tensor, noise: float, seed: int, index: Any, purpose: int = SMOOTHGRAD_NOISE
) -> tf.Tensor:
    """Copy number `index` of a batch with SmoothGrad's noise added.

    Each sample `x` gets `noise * (max(x) - min(x)) * e`, with `e` standard
    normal noise that is a function of `seed`, `index` and the sample's own
    values: a sample gets the same noise in any batch, at any position, on any
    replica, with or without XLA.

    Args:
        inputs: `(N, ...)` float inputs.
        noise: the noise level, a fraction of each sample's value range.
        seed: the integer seed.
        index: the copy number (an int or int64 scalar tensor).
        purpose: the random stream's purpose (see `stream_key`; default
            `SMOOTHGRAD_NOISE`).

    Returns:
        The noisy copy, same shape and dtype as `inputs`.

    Example:
        >>> noisy = noisy_copy(images, 0.15, seed=0, index=3)   # SmoothGrad's copy 3
    """
    index = tf.reshape(tf.cast(index, tf.int64), [1])
    return noisy_copies(inputs, noise, seed, index, purpose)[0]


def noisy_copies(
    inputs: tf.Tensor, noise: float, seed: int, indices: tf.Tensor, purpose: int = SMOOTHGRAD_NOISE
) -> tf.Tensor:
    """Copies `indices` of a batch with SmoothGrad's noise added, in one go.

    Copy `k` is `noisy_copy(inputs, noise, seed, indices[k], purpose)`.

    Args:
        inputs: `(N, ...)` float inputs.
        noise: the noise level, a fraction of each sample's value range.
        seed: the integer seed.
        indices: `(K,)` int copy numbers.
        purpose: the random stream's purpose (see `stream_key`).

    Returns:
        `(K, N, ...)` noisy copies, in the dtype of `inputs`.
    """
    inputs = tf.convert_to_tensor(inputs)
    axes = list(range(1, inputs.shape.rank))
    value_range = tf.reduce_max(inputs, axes, keepdims=True) - tf.reduce_min(
        inputs, axes, keepdims=True
    )
    scale = tf.cast(noise, inputs.dtype) * value_range
    streams = stream_key(seed, tf.cast(indices, tf.int64)[:, None], purpose)
    keys = hash32(sample_keys(inputs)[None] ^ streams)  # (K, N)
    shape = tf.concat([[-1], tf.shape(inputs)[1:]], axis=0)
    normal = tf.reshape(
        hashed_normal(shape, tf.reshape(keys, [-1])),
        tf.concat([tf.shape(keys), tf.shape(inputs)[1:]], axis=0),
    )
    return inputs[None] + scale[None] * tf.cast(normal, inputs.dtype)

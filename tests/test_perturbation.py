"""The lazy perturbation evaluator: exact, and independent of its chunk size."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_explainable.perturbation import evaluate_perturbations

INPUTS = np.random.default_rng(0).normal(size=(3, 7, 2)).astype("float32")
WEIGHTS = np.random.default_rng(1).normal(size=(7, 2, 4)).astype("float32")


def _zero_position(indices):
    # perturbation p zeroes position p of every sample: (k, N, 7, 2)
    keep = 1.0 - tf.one_hot(indices, 7)[:, None, :, None]
    return keep * tf.constant(INPUTS)[None]


def _score(images, copies):
    return tf.einsum("ntc,tcl->nl", images, tf.constant(WEIGHTS))  # (copies * N, 4)


def _expected():
    rows = []
    for position in range(7):
        perturbed = INPUTS.copy()
        perturbed[:, position] = 0.0
        rows.append(np.einsum("ntc,tcl->nl", perturbed, WEIGHTS))
    return np.stack(rows)  # (7, N, 4)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50])
def test_scores_equal_a_loop_whatever_the_chunk(chunk):
    scores = evaluate_perturbations(_zero_position, _score, 7, chunk, [4])
    assert scores.shape == (7, 3, 4)
    np.testing.assert_allclose(scores.numpy(), _expected(), rtol=1e-5, atol=1e-5)


def test_compiles_under_xla_with_unknown_batch_size():
    @tf.function(input_signature=[tf.TensorSpec((None, 7, 2), tf.float32)], jit_compile=True)
    def run(inputs):
        def perturb(indices):
            keep = 1.0 - tf.one_hot(indices, 7)[:, None, :, None]
            return keep * inputs[None]

        return evaluate_perturbations(perturb, _score, 7, 3, [4])

    np.testing.assert_allclose(run(tf.constant(INPUTS)).numpy(), _expected(), rtol=1e-5, atol=1e-5)


def test_scalar_scores_and_a_single_chunk():
    def score(images, copies):
        return tf.reduce_sum(images, axis=[1, 2])

    scores = evaluate_perturbations(_zero_position, score, 7, 7)
    np.testing.assert_allclose(scores.numpy(), _expected_sums(), rtol=1e-5, atol=1e-5)


def _expected_sums():
    return np.stack(
        [INPUTS.sum(axis=(1, 2)) - INPUTS[:, position].sum(axis=1) for position in range(7)]
    )

"""The lazy perturbation evaluator: score many perturbed copies of a batch.

Score-CAM (inputs masked by each channel), Deletion and Insertion (inputs with
more and more pixels changed) and, later, occlusion windows, random masks and
channel ablation all score one batch under many perturbations. Holding every
perturbed copy at once needs `batch_size * perturbations` inputs of memory;
`evaluate_perturbations` builds and scores them `chunk` perturbations at a time
in a `tf.while_loop` inside the compiled step, so memory is bounded by
`batch_size * chunk` whatever the number of perturbations. The chunk size is
static (the last chunk repeats the final perturbation, whose extra scores are
dropped), so the loop also compiles under XLA, and the results do not depend
on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

__all__ = ["evaluate_perturbations"]


def evaluate_perturbations(
    perturb: Callable[[tf.Tensor], tf.Tensor],
    score: Callable[[tf.Tensor, int], tf.Tensor],
    count: int,
    chunk: int,
    score_shape: Sequence[int] = (),
) -> tf.Tensor:
    """Score `count` perturbations of a batch, `chunk` perturbations per pass.

    Args:
        perturb: `indices -> (k, N, *shape)`: the batch under perturbations
            `indices` (int32 `(k,)`, each in `[0, count)`), perturbation-major.
        score: `(images, copies) -> (copies * N, *score_shape)` float scores
            of `copies` perturbed copies of the batch stacked copy-major
            (`(copies * N, *shape)`).
        count: the number of perturbations.
        chunk: perturbations built and scored together (at most `count`);
            a pass holds `chunk * N` inputs. The `ceil(count / chunk)` passes
            share the perturbations evenly, so a pass may hold fewer.
        score_shape: the shape of one sample's score (default `()`).

    Returns:
        `(count, N, *score_shape)` float32 scores: row `p` holds every
        sample's score under perturbation `p`.

    Example:
        Scores of a batch with each of its `C` channels zeroed:

        >>> def zeroed(indices):
        ...     keep = 1.0 - tf.one_hot(indices, C)[:, None, None, None, :]
        ...     return keep * inputs[None]
        >>> def score(images, copies):
        ...     return model(images)[:, 0]
        >>> scores = evaluate_perturbations(zeroed, score, C, chunk=16)   # (C, N)
    """
    chunk = max(1, min(chunk, count))
    chunks = -(-count // chunk)
    # Balanced chunks: as many passes, but at most `chunks - 1` padding copies
    # (36 perturbations in chunks of 16 are scored as 3 x 12, not 3 x 16).
    chunk = -(-count // chunks)

    def body(index: tf.Tensor, scores: tf.TensorArray) -> tuple:
        indices = tf.minimum(index * chunk + tf.range(chunk), count - 1)
        images = perturb(indices)
        samples = tf.shape(images)[1]
        flat = tf.reshape(images, tf.concat([[-1], tf.shape(images)[2:]], axis=0))
        flat = tf.ensure_shape(flat, [None, *images.shape[2:]])
        part = tf.cast(score(flat, chunk), tf.float32)
        part = tf.reshape(part, [chunk, samples, *score_shape])
        return index + 1, scores.write(index, part)

    scores = tf.TensorArray(tf.float32, size=chunks, element_shape=[chunk, None, *score_shape])
    _, scores = tf.while_loop(lambda index, _: index < chunks, body, (tf.constant(0), scores))
    stacked = scores.stack()
    samples = tf.shape(stacked)[2]
    return tf.reshape(stacked, [chunks * chunk, samples, *score_shape])[:count]

"""Train the bundled demo model on synthetic shapes, reproducibly.

Run `python -m keras_explainable.demo.train` to rebuild
`keras_explainable/demo/shapes_cnn.keras` (about a minute and a half on two CPU
cores). The seeds are fixed and TensorFlow's deterministic ops are enabled,
so a rerun on the same machine and library versions gives the same weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_model", "train"]

TRAIN_SEED = 0
VALIDATION_SEED = 1


def build_model(size: int = 64, classes: int = 4):
    """Build the demo CNN: four 3x3 convolutions, global average pooling, softmax.

    The last convolution (`"conv4"`, 16 x 16 x 64 for 64 x 64 inputs) feeds
    global average pooling and a Dense softmax, so CAM, Grad-CAM and every
    other method apply. About 60 k parameters.

    Args:
        size: the input height and width (default 64).
        classes: the number of classes (default 4).

    Returns:
        An uncompiled `keras.Model` mapping `(N, size, size, 3)` images in
        [0, 1] to `(N, classes)` probabilities.
    """
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="shapes_cnn")


def train(
    path: str | os.PathLike,
    *,
    samples: int = 4000,
    epochs: int = 4,
    seed: int = TRAIN_SEED,
    validation_samples: int = 1000,
    verbose: int = 2,
) -> float:
    """Train the demo model and save it (without optimizer state) to `path`.

    Args:
        path: where to write the `.keras` file.
        samples: the number of training images (default 4000).
        epochs: the number of epochs (default 4).
        seed: the seed of the weights, the shuffling and the training images
            (default 0; the validation images use seed 1).
        validation_samples: the number of validation images (default 1000);
            they are only measured, never trained on.
        verbose: Keras' `fit` verbosity (default 2: one line per epoch).

    Returns:
        The accuracy on the validation images.
    """
    import keras
    import tensorflow as tf

    from keras_explainable.demo.shapes import CLASS_NAMES, make_shapes

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    train_data = make_shapes(samples, seed=seed)
    validation = make_shapes(validation_samples, seed=VALIDATION_SEED)
    model = build_model(classes=len(CLASS_NAMES))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        train_data.images,
        train_data.labels,
        batch_size=64,
        epochs=epochs,
        validation_data=(validation.images, validation.labels),
        verbose=verbose,
    )
    # A fresh copy without optimizer state keeps the bundled file small.
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(path)
    predictions = clean.predict(validation.images, verbose=0).argmax(-1)
    return float((predictions == validation.labels).mean())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `python -m keras_explainable.demo.train [--out PATH]`."""
    default = Path(__file__).with_name("shapes_cnn.keras")
    parser = argparse.ArgumentParser(
        prog="python -m keras_explainable.demo.train",
        description="Train the bundled demo CNN on synthetic shapes.",
    )
    parser.add_argument("--out", default=str(default), help=f"default: {default}")
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=TRAIN_SEED)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    accuracy = train(args.out, samples=args.samples, epochs=args.epochs, seed=args.seed)
    print(
        f"saved {args.out}: validation accuracy {accuracy:.4f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Make the pictures of "Watching explanations while training" with the callback itself.

Run from the repository root (under a minute on two CPU cores):

    python docs/scripts/make_training_pictures.py

Trains the demo CNN (`keras_explainable.demo.train.build_model`) from its
random initial weights on generated shapes, with `ke.callbacks.ExplainCallback`
writing a PNG grid of Grad-CAM maps after every epoch, and copies the grids
of the first and the last epoch to `docs/images/training-epoch-*.png`
(reduced to a 64-colour palette to keep them small). The seeds are fixed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from PIL import Image  # noqa: E402

import keras_explainable as ke  # noqa: E402
from keras_explainable import demo  # noqa: E402
from keras_explainable.demo.train import build_model  # noqa: E402

DOCS = Path(__file__).resolve().parents[1]
EPOCHS = 4


def main() -> None:
    keras.utils.set_random_seed(0)
    train = demo.make_shapes(1500, seed=0)
    watched = demo.make_shapes(4, seed=18)  # one main object of each class
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    with tempfile.TemporaryDirectory() as folder:
        callback = ke.callbacks.ExplainCallback(
            ke.GradCAM,
            watched.images,
            watched.labels,
            out_dir=folder,
            class_names=demo.CLASS_NAMES,
        )
        model.fit(
            train.images,
            train.labels,
            batch_size=64,
            epochs=EPOCHS,
            verbose=2,
            callbacks=[callback],
        )
        for epoch in (1, EPOCHS):
            grid = Image.open(Path(folder) / f"epoch_{epoch:04d}.png").convert("RGB")
            target = DOCS / "images" / f"training-epoch-{epoch}.png"
            grid.quantize(64).save(target, optimize=True)
            print(f"wrote {target.relative_to(DOCS.parent)} ({target.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()

"""Peak memory of Integrated Gradients: bounded by step_batch_size, not by steps.

Each configuration runs in a fresh process, which builds the model, explains
one batch and reports its peak resident memory (`ru_maxrss`). The reference
process builds the same model and runs one raw forward + backward pass on
`batch * step_batch_size` inputs: what one pass of Integrated Gradients holds.
Run:

    python benchmarks/memory.py                  # ResNet50V2 128x128, batch 2
    python benchmarks/memory.py --size 224 --batch 4
    python benchmarks/memory.py --write docs/snippets/ig-memory.md

The default cases: steps 16 and steps 256 at step_batch_size 16 (should use
the same memory), and every point of a 64-step path at once
(step_batch_size 65, as libraries that batch all steps do) for contrast.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CASES = (
    ("raw forward + backward of batch x 16 inputs", None, 16),
    ("IntegratedGradients steps=16, step_batch_size=16", 16, 16),
    ("IntegratedGradients steps=256, step_batch_size=16", 256, 16),
    ("IntegratedGradients steps=64, step_batch_size=65 (all at once)", 64, 65),
)


def child(size: int, batch: int, steps: int | None, step_batch_size: int) -> dict:
    """Explain one batch in this process; return its peak memory and time."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_explainable as ke

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50V2(weights=None, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    start = time.perf_counter()
    if steps is None:
        images = tf.constant(np.repeat(x, step_batch_size, axis=0))

        @tf.function
        def forward_backward(images):
            with tf.GradientTape() as tape:
                tape.watch(images)
                score = tf.reduce_sum(tf.reduce_max(model(images, training=False), axis=-1))
            return tape.gradient(score, images)

        forward_backward(images).numpy()
    else:
        explainer = ke.IntegratedGradients(
            model, steps=steps, step_batch_size=step_batch_size, batch_size=batch, verbose=0
        )
        explainer.explain(x)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_mib": peak / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--write", metavar="PATH", help="also write the table to this Markdown snippet"
    )
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        steps, step_batch_size = args.child
        result = child(args.size, args.batch, steps or None, step_batch_size)
        print(json.dumps(result))
        return
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, "
        f"{os.cpu_count()} cores: ResNet50V2 (weights=None) {args.size}x{args.size}, "
        f"batch {args.batch}; peak resident memory of a fresh process per case "
        "(`benchmarks/memory.py`).",
        "",
        "| case | peak memory (MiB) | seconds |",
        "|---|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for label, steps, step_batch_size in CASES:
        command = [
            sys.executable,
            __file__,
            "--size",
            str(args.size),
            "--batch",
            str(args.batch),
            "--child",
            str(steps or 0),
            str(step_batch_size),
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        lines.append(f"| {label} | {result['peak_mib']:.0f} | {result['seconds']:.1f} |")
        print(lines[-1], flush=True)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()

"""Throughput of every method as a ratio to its floor, measured in one process.

The floor of a method is the cost of the model passes it cannot avoid, timed
on the same batch in the same process:

* Grad-CAM, CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Eigen-CAM,
  Eigen-Grad-CAM: one raw forward pass (the gradient only flows back to the
  explained layer, through the small head); TTA: one per pass;
* Saliency, FullGradient, Guided Backprop, Deconvnet, Guided Grad-CAM: one
  raw forward + backward pass to the input;
* Score-CAM: one raw forward pass per channel of the explained layer, timed
  at the batch size of Score-CAM's own masked passes;
* Ablation-CAM: one raw forward pass, plus one pass of the model's head (the
  layers after the explained one, as `AblationCAM.head` re-runs them) per
  channel, timed on the layer's activations at the batch size of
  Ablation-CAM's own ablated passes; the table also gives its ratio to the
  head passes alone and its speed-up over one raw forward pass per channel;
* Occlusion (36 windows) and RISE (256 masks) on MobileNetV3Small 96x96:
  one raw forward pass per window or mask, timed at the batch size of the
  method's own perturbed passes (they add one forward pass on the input);
* SmoothGrad over Saliency: `samples` raw forward + backward passes;
* InputXGradient: one raw forward + backward pass to the input;
* LRP (`epsilon_plus_flat`, and LRP-epsilon on every layer), DeepLIFT and
  DeepSHAP (4 background samples: 4 passes): one raw forward + backward
  pass each. DeepLIFT's baseline (DeepSHAP's background) has its forward
  pass once per `explain` call, which one batch of 16 bears alone (a pass
  of one image costs about 1/20 of the floor on a CPU): DeepLIFT also gets
  a row explaining 4 batches of 16 in one call, against 4 passes. LRP's z+
  rule also divides by each convolution's output with positive weights, a
  second forward pass through the convolutions, so `epsilon_plus_flat`
  gets a second row against one forward + backward pass and one more
  forward pass (2/3 of the first row's floor where the two passes cost the
  same);
* Grad-CAM on a keras-hub ViT (224x224, patch 16, 4 blocks, width 192) at
  its automatic layer inside the last block: one raw forward pass plus the
  backward pass from the logits to that layer, as a plain `GradientTape`
  computation that intercepts the same sublayer;
* IntegratedGradients with `steps=16` (kept short): 16 raw forward +
  backward passes, for both rules timed. Gauss-Legendre (the default)
  evaluates 16 points and adds one forward pass of the input and the
  baseline together (2 x batch images: two forward passes, 2/3 to 1 forward
  + backward pass depending on the device), so 0.94x to 0.96x is its best;
  the trapezoid evaluates 17 points, so 16/17 = 0.94x is its best;
* GradientSHAP with `samples=8`: 8 raw forward + backward passes (it adds
  one forward pass on the clean input);
* Saliency, Integrated Gradients (`steps=16`) and Occlusion (`window=1`)
  on a GPT2-shaped causal LM and a BERT-shaped classifier from keras-hub
  (128 tokens, 6 blocks of width 256): one, or 16, forward + backward passes
  to the token embedding's output, and 128 forward passes (see
  `language_model_cases`).
* The metrics, on ResNet50V2 with ready-made maps: FaithfulnessCorrelation
  (100 runs), MuFidelity (200 samples), Infidelity (10 perturbations): one
  raw forward pass per perturbation plus one on the clean batch; ROAD (MoRF,
  9 percentages): one raw forward pass per percentage (the imputation is the
  rest); the floor's passes are timed at the batch size of the metric's own
  (`step_batch_size` perturbations of the batch per pass).
  MaxSensitivity (10 perturbations, over Saliency): the explainer's runs it
  needs, the batch and its perturbed copies explained at the batch size of
  the metric's own calls.

A floor of several passes is timed as those passes run back to back, so that
it is measured over as long a stretch as the method it is compared with.

A ratio of 1.0 means the method costs exactly its floor. It also times 1 and
10 targets per image for Grad-CAM and Saliency, and Grad-CAM on two layers at
once (`layers=`) against Grad-CAM on each of them alone. Run:

    python benchmarks/benchmark.py                       # print the table
    python benchmarks/benchmark.py --write docs/performance.md
    python benchmarks/benchmark.py --only layers          # the layers= table alone

Throughputs are the best of `--repeats` round-robin rounds after a warm-up
call; each ratio is the median over rounds of the ratio within a round.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_explainable as ke  # noqa: E402

#: The arithmetic floor of LRP's z+ rule: a forward and backward pass, and the
#: convolutions again forward with their positive weights (timed as a whole
#: forward pass, a little more than they cost).
PLUS_FLOOR = "forward+backward + forward"
#: Batches one `explain` call holds in the rows "..., N batches per call".
MANY_BATCHES = 4


def round_times(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each function in each of `repeats` rounds, after a warm-up.

    The functions are timed round-robin (one call of each per round), so a
    slow spell of a shared machine hits them all alike instead of whichever
    happened to run then.
    """
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def best(times: dict[str, list[float]]) -> dict[str, float]:
    """The best (smallest) time of each function."""
    return {name: min(values) for name, values in times.items()}


def paired_ratio(
    times: dict[str, list[float]], floor: str, method: str, factor: float = 1
) -> float:
    """Median over rounds of `factor * floor time / method time` in that round.

    Both times of a pair are taken seconds apart, so the ratio cancels the
    slow and fast spells of a shared machine that a ratio of best times keeps.
    """
    return float(
        np.median([factor * f / m for f, m in zip(times[floor], times[method], strict=True)])
    )


def raw_passes(model: keras.Model) -> tuple[Callable, Callable]:
    """Compiled raw forward and forward+backward-to-input steps of `model`."""

    @tf.function
    def forward(x):
        return model(x, training=False)

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = model(x, training=False)
            score = tf.reduce_sum(tf.reduce_max(outputs, axis=-1))
        return tape.gradient(score, x)

    def run_forward(x):
        return forward(tf.convert_to_tensor(x)).numpy()

    def run_forward_backward(x):
        return forward_backward(tf.convert_to_tensor(x)).numpy()

    return run_forward, run_forward_backward


def tape_to_layer(model: keras.Model, layer: keras.Layer, score_of: Callable) -> Callable:
    """A compiled forward pass and the backward pass from the score to `layer`'s output.

    A plain `GradientTape` computation, the floor of the methods that
    differentiate at a layer: the layer's `call` is intercepted while the
    function is traced (once), and its first call's output is watched (a
    token embedding's lookup, not its reversed call as a language model's
    head). `score_of(outputs)` gives the `(N,)` scores.
    """

    @tf.function
    def to_layer(features):
        own, held = layer.call, {}

        def call(*args, **kwargs):
            output = own(*args, **kwargs)
            if "output" not in held:
                tape.watch(output)
                held["output"] = output
            return output

        layer.call = call
        try:
            with tf.GradientTape() as tape:
                score = tf.reduce_sum(score_of(model(features, training=False)))
        finally:
            del layer.call
        return tape.gradient(score, held["output"])

    return to_layer


def selected(name: str, only: list[str] | None) -> bool:
    """Whether the case `name` is one of the `--only` cases (all without it)."""
    return only is None or any(part.lower() in name.lower() for part in only)


LAYER_PAIR = ("conv4_block6_out", "conv5_block3_out")
LAYER_LIMIT = 1.1


def resnet_cases(
    batch: int, size: int, repeats: int, only: list[str] | None = None
) -> tuple[list[dict], list[dict], list[dict]]:
    """Every gradient method and decorator on ResNet50V2 (weights=None)."""
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50V2(weights=None, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    background = np.random.default_rng(1).uniform(-1, 1, (4, size, size, 3)).astype("float32")
    forward, forward_backward = raw_passes(model)
    saliency = ke.Saliency(model, batch_size=batch)
    gradcam = ke.GradCAM(model, batch_size=batch)
    # Each explainer is built only when its case is selected.
    builders = [
        ("GradCAM", lambda: gradcam, "forward", 1),
        ("CAM", lambda: ke.CAM(model, batch_size=batch), "forward", 1),
        ("GradCAMPlusPlus", lambda: ke.GradCAMPlusPlus(model, batch_size=batch), "forward", 1),
        ("XGradCAM", lambda: ke.XGradCAM(model, batch_size=batch), "forward", 1),
        ("HiResCAM", lambda: ke.HiResCAM(model, batch_size=batch), "forward", 1),
        ("LayerCAM", lambda: ke.LayerCAM(model, batch_size=batch), "forward", 1),
        ("EigenCAM", lambda: ke.EigenCAM(model, batch_size=batch), "forward", 1),
        ("EigenGradCAM", lambda: ke.EigenGradCAM(model, batch_size=batch), "forward", 1),
        ("TTA(GradCAM), identity + horizontal flip", lambda: ke.TTA(gradcam), "forward", 2),
        ("Saliency", lambda: saliency, "forward+backward", 1),
        ("FullGradient", lambda: ke.FullGradient(model, batch_size=batch), "forward+backward", 1),
        (
            "SmoothGrad(Saliency), 8 samples",
            lambda: ke.SmoothGrad(saliency, samples=8),
            "forward+backward",
            8,
        ),
        (
            "GuidedBackprop",
            lambda: ke.GuidedBackprop(model, batch_size=batch),
            "forward+backward",
            1,
        ),
        ("Deconvnet", lambda: ke.Deconvnet(model, batch_size=batch), "forward+backward", 1),
        (
            "GuidedGradCAM",
            lambda: ke.GuidedGradCAM(model, batch_size=batch),
            "forward+backward",
            1,
        ),
        (
            "InputXGradient",
            lambda: ke.InputXGradient(model, batch_size=batch),
            "forward+backward",
            1,
        ),
        (
            "LRP, epsilon_plus_flat",
            lambda: ke.LRP(model, composite="epsilon_plus_flat", batch_size=batch),
            "forward+backward",
            1,
        ),
        # LRP-epsilon on every layer: a modified backward pass, no extra pass.
        (
            "LRP, epsilon",
            lambda: ke.LRP(model, rule="epsilon", batch_size=batch),
            "forward+backward",
            1,
        ),
        (
            "IntegratedGradients, 16 steps, gausslegendre",
            lambda: ke.IntegratedGradients(model, steps=16, batch_size=batch),
            "forward+backward",
            16,
        ),
        (
            "IntegratedGradients, 16 steps, riemann_trapezoid",
            lambda: ke.IntegratedGradients(
                model, steps=16, method="riemann_trapezoid", batch_size=batch
            ),
            "forward+backward",
            16,
        ),
        (
            "GradientSHAP, 8 samples",
            lambda: ke.GradientSHAP(model, background, samples=8, batch_size=batch),
            "forward+backward",
            8,
        ),
        # DeepLIFT's floor: one forward and backward pass of the batch; the
        # zero baseline's forward pass, once per call, is part of its cost.
        ("DeepLIFT", lambda: ke.DeepLIFT(model, batch_size=batch), "forward+backward", 1),
        (
            f"DeepLIFT, {MANY_BATCHES} batches per call",
            lambda: ke.DeepLIFT(model, batch_size=batch),
            "forward+backward",
            MANY_BATCHES,
        ),
        (
            "DeepSHAP, 4 background samples",
            lambda: ke.DeepSHAP(model, background, batch_size=batch),
            "forward+backward",
            4,
        ),
    ]
    cases = [
        (name, build(), floor, passes)
        for name, build, floor, passes in builders
        if selected(name, only)
    ]
    raw = {"forward": lambda: forward(x), "forward+backward": lambda: forward_backward(x)}
    functions = dict(raw)
    if any(name == "LRP, epsilon_plus_flat" for name, *_ in cases):
        # z+ divides by the convolutions' outputs with positive weights: each
        # convolution runs twice forward (W, W+) and once backward.
        functions[PLUS_FLOOR] = lambda: (forward_backward(x), forward(x))
    # The rows "..., N batches per call" explain N batches in each call.
    calls = {
        name: passes if name.endswith(" batches per call") else 1 for name, *_, passes in cases
    }
    many = None
    if max(calls.values(), default=1) > 1:
        shape = (MANY_BATCHES * batch, size, size, 3)
        many = np.random.default_rng(2).uniform(-1, 1, shape).astype("float32")
    for name, explainer, floor, passes in cases:
        inputs = many if calls[name] > 1 else x
        functions[name] = lambda e=explainer, inputs=inputs: e.explain(inputs)
        if passes > 1:
            # A multi-pass floor is timed as its passes run back to back, so
            # it is measured over as long a stretch as the method itself.
            functions[f"{passes} x {floor}"] = lambda f=raw[floor], k=passes: [
                f() for _ in range(k)
            ]
    timed_layers = selected("layers", only)
    if timed_layers:
        # Two layers at once against each alone: one forward pass, and one
        # backward pass that reaches the earlier of the two layers.
        for layer in LAYER_PAIR:
            single = ke.GradCAM(model, layer=layer, batch_size=batch)
            functions[f"GradCAM, layer {layer}"] = lambda e=single: e.explain(x)
        both = ke.GradCAM(model, layers=list(LAYER_PAIR), batch_size=batch)
        functions["GradCAM, layers"] = lambda: both.explain(x)
    ten = np.tile(np.arange(10), (batch, 1))
    if only is None:
        functions["GradCAM, 10 targets"] = lambda: gradcam.explain(x, ten)
        functions["GradCAM, 1 target"] = lambda: gradcam.explain(x, 0)
        functions["Saliency, 10 targets"] = lambda: saliency.explain(x, ten)
        functions["Saliency, 1 target"] = lambda: saliency.explain(x, 0)
    times = round_times(functions, repeats)
    seconds = best(times)
    label = f"ResNet50V2 {size}x{size}"
    rows = [
        _row(label, f"raw {kind}", seconds[kind], kind, 1, seconds[kind], batch, 1.0)
        for kind in ("forward", "forward+backward")
    ]
    for name, _, floor, passes in cases:
        key = f"{passes} x {floor}" if passes > 1 else floor
        floor_seconds = seconds[key] / passes
        ratio = paired_ratio(times, key, name)
        images = calls[name] * batch
        rows.append(_row(label, name, seconds[name], floor, passes, floor_seconds, images, ratio))
        if PLUS_FLOOR in seconds and name == "LRP, epsilon_plus_flat":
            ratio = paired_ratio(times, PLUS_FLOOR, name)
            rows.append(
                _row(label, name, seconds[name], PLUS_FLOOR, 1, seconds[PLUS_FLOOR], batch, ratio)
            )
    targets = [
        {
            "method": method,
            "one": seconds[f"{method}, 1 target"],
            "ten": seconds[f"{method}, 10 targets"],
            "limit": limit,
        }
        for method, limit in (("GradCAM", 1.5), ("Saliency", 10.0))
        if only is None
    ]
    layers = []
    if timed_layers:
        both = seconds["GradCAM, layers"]
        for layer in LAYER_PAIR:
            key = f"GradCAM, layer {layer}"
            per_round = [m / f for f, m in zip(times[key], times["GradCAM, layers"], strict=True)]
            layers.append(
                {
                    "single": layer,
                    "single_seconds": seconds[key],
                    "both_seconds": both,
                    "cost": float(np.median(per_round)),
                }
            )
    return rows, targets, layers


def scorecam_cases(batch: int, size: int, repeats: int) -> list[dict]:
    """Score-CAM on MobileNetV3Small (weights=None), against C raw forward passes."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(size, size, 3), include_preprocessing=False
    )
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    scorecam = ke.ScoreCAM(model, batch_size=batch)
    channels = int(scorecam.exposure.layers[0].tensor.shape[-1])
    # The floor: one raw forward pass per channel, timed at the batch size
    # Score-CAM's masked passes use (batch * mask_batch_size images).
    masked = np.repeat(x, scorecam.mask_batch_size, axis=0)
    forward, _ = raw_passes(model)
    calls = -(-channels // scorecam.mask_batch_size)
    times = round_times(
        {
            # the floor's passes back to back, as long a stretch as Score-CAM's run
            "forward": lambda: [forward(masked) for _ in range(calls)],
            "ScoreCAM": lambda: scorecam.explain(x),
        },
        repeats,
    )
    seconds = best(times)
    per_pass = seconds["forward"] / calls / scorecam.mask_batch_size
    # the floor block covers calls * mask_batch_size channels; Score-CAM needs `channels`
    ratio = paired_ratio(
        times, "forward", "ScoreCAM", channels / (calls * scorecam.mask_batch_size)
    )
    label = f"MobileNetV3Small {size}x{size}"
    return [
        _row(label, "raw forward", per_pass, "forward", 1, per_pass, batch, 1.0),
        _row(
            label,
            f"ScoreCAM ({channels} channels)",
            seconds["ScoreCAM"],
            "forward",
            channels,
            per_pass,
            batch,
            ratio,
        ),
    ]


def surrogate_cases(
    batch: int, size: int, samples: int, repeats: int, only: list[str] | None
) -> list[dict]:
    """KernelSHAP and LIME on MobileNetV3Small (weights=None), against `samples` raw forwards."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(size, size, 3), include_preprocessing=False
    )
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    options = {"grid": (8, 8), "samples": samples, "batch_size": batch}
    explainers = {
        name: build(model, **options)
        for name, build in (("KernelSHAP", ke.KernelSHAP), ("LIME", ke.LIME))
        if selected(name, only)
    }
    chunk = next(iter(explainers.values())).sample_batch_size
    # The floor: one raw forward pass per coalition, timed at the batch size
    # of the methods' masked passes (batch * sample_batch_size images).
    masked = np.repeat(x, chunk, axis=0)
    forward, _ = raw_passes(model)
    calls = -(-samples // chunk)
    times = round_times(
        {
            "forward": lambda: [forward(masked) for _ in range(calls)],
            **{name: (lambda e=e: e.explain(x)) for name, e in explainers.items()},
        },
        repeats,
    )
    seconds = best(times)
    per_pass = seconds["forward"] / calls / chunk
    label = f"MobileNetV3Small {size}x{size}"
    rows = [_row(label, "raw forward", per_pass, "forward", 1, per_pass, batch, 1.0)]
    for name in explainers:
        ratio = paired_ratio(times, "forward", name, samples / (calls * chunk))
        rows.append(
            _row(
                label,
                f"{name} ({samples} samples, 8x8 grid)",
                seconds[name],
                "forward",
                samples,
                per_pass,
                batch,
                ratio,
            )
        )
    return rows


def perturbation_cases(
    batch: int, size: int, repeats: int, only: list[str] | None = None
) -> list[dict]:
    """Occlusion and RISE on MobileNetV3Small (weights=None), against P raw forward passes."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(size, size, 3), include_preprocessing=False
    )
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    forward, _ = raw_passes(model)
    window = size // 6
    cases = [
        (
            "Occlusion",
            f"Occlusion ({window}x{window} window, stride {window}: 36 windows)",
            lambda: ke.Occlusion(model, window=window, batch_size=batch),
            36,
            "window_batch_size",
        ),
        (
            "RISE",
            "RISE (256 masks)",
            lambda: ke.RISE(model, masks=256, batch_size=batch),
            256,
            "mask_batch_size",
        ),
    ]
    label = f"MobileNetV3Small {size}x{size}"
    rows = []
    for name, method, build, count, chunk_option in cases:
        if not selected(name, only):
            continue
        explainer = build()
        # The floor: one raw forward pass per perturbation, timed at the batch
        # size of the method's own passes (batch * chunk images, the
        # perturbations shared evenly among the passes).
        calls = -(-count // getattr(explainer, chunk_option))
        chunk = -(-count // calls)
        perturbed = np.repeat(x, chunk, axis=0)
        times = round_times(
            {
                "forward": lambda: [forward(perturbed) for _ in range(calls)],  # noqa: B023
                name: lambda: explainer.explain(x),  # noqa: B023
            },
            repeats,
        )
        seconds = best(times)
        per_pass = seconds["forward"] / calls / chunk
        ratio = paired_ratio(times, "forward", name, count / (calls * chunk))
        rows.append(_row(label, method, seconds[name], "forward", count, per_pass, batch, ratio))
    return rows


def ablationcam_cases(batch: int, size: int, repeats: int) -> list[dict]:
    """Ablation-CAM on ResNet50V2 conv5_block3_out, against C passes of its head."""
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50V2(weights=None, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    ablation = ke.AblationCAM(model, layer="conv5_block3_out", batch_size=batch)
    head, chunk = ablation.head, ablation.channel_batch_size
    features, context, _ = head.split(x)
    channels = int(features.shape[-1])
    calls = -(-channels // chunk)
    # The floor: the head on the layer's activations, at the batch size of
    # Ablation-CAM's ablated passes (batch * channel_batch_size copies), the
    # passes queued back to back and waited for once.
    copies = tf.tile(features, [chunk, 1, 1, 1])
    tiled = [tf.tile(t, [chunk, *[1] * (t.shape.rank - 1)]) for t in context]
    head_pass = tf.function(lambda f: head(f, tiled))

    def head_passes() -> np.ndarray:
        outputs = [head_pass(copies) for _ in range(calls)]
        return outputs[-1].numpy()

    forward, _ = raw_passes(model)
    times = round_times(
        {
            "forward": lambda: forward(x),
            "head": head_passes,
            "AblationCAM": lambda: ablation.explain(x),
        },
        repeats,
    )
    # The floor block covers calls * chunk channels; Ablation-CAM needs `channels`.
    times["floor"] = [
        f + h * channels / (calls * chunk)
        for f, h in zip(times["forward"], times["head"], strict=True)
    ]
    seconds = best(times)
    per_pass = seconds["head"] / calls / chunk
    ratio = paired_ratio(times, "floor", "AblationCAM")
    heads_only = paired_ratio(times, "head", "AblationCAM", channels / (calls * chunk))
    speedup = paired_ratio(times, "forward", "AblationCAM", channels)
    label = f"ResNet50V2 {size}x{size}"
    floor_images_per_s = batch / seconds["floor"]
    return [
        _row(
            label,
            "raw forward, timed with AblationCAM",
            seconds["forward"],
            "forward",
            1,
            seconds["forward"],
            batch,
            1.0,
        ),
        _row(label, "head of conv5_block3_out", per_pass, "head", 1, per_pass, batch, 1.0),
        {
            "model": label,
            "method": f"AblationCAM ({channels} channels; {heads_only:.2f}x of the head "
            f"passes alone, {speedup:.0f}x faster than {channels} raw forward passes)",
            "images_per_s": batch / seconds["AblationCAM"],
            "floor": f"forward + {channels} x head",
            "floor_images_per_s": floor_images_per_s,
            "ratio": ratio,
        },
    ]


def vit_cases(batch: int, repeats: int) -> list[dict]:
    """Grad-CAM on a keras-hub ViT at its automatic layer, inside the encoder's last block.

    The model: 224x224 images, 16x16 patches, 4 blocks of width 192 (3
    heads, MLP 768), 1000 classes, built from a config (random weights). The
    floor: one forward pass and the backward pass from the logits to the
    layer Grad-CAM reads (the last block's `ln_1`), as a plain
    `GradientTape` computation that intercepts that sublayer itself.
    """
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(224, 224, 3),
        patch_size=16,
        num_layers=4,
        num_heads=3,
        hidden_dim=192,
        mlp_dim=768,
    )
    model = keras_hub.models.ViTImageClassifier(
        backbone=backbone, num_classes=1000, preprocessor=None
    )
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 224, 224, 3)).astype("float32")
    gradcam = ke.GradCAM(model, batch_size=batch)
    layer = gradcam.exposure.layers[0].call.layer
    forward, _ = raw_passes(model)

    to_layer = tape_to_layer(model, layer, lambda logits: tf.reduce_max(logits, axis=-1))

    times = round_times(
        {
            "forward": lambda: forward(x),
            "to layer": lambda: to_layer(tf.constant(x)).numpy(),
            "GradCAM": lambda: gradcam.explain(x),
        },
        repeats,
    )
    seconds = best(times)
    label = "keras-hub ViT 224x224 (16x16 patches, 4 blocks, width 192)"
    floor = "forward + backward to the layer"
    return [
        _row(
            label, "raw forward", seconds["forward"], "forward", 1, seconds["forward"], batch, 1.0
        ),
        _row(label, f"raw {floor}", seconds["to layer"], floor, 1, seconds["to layer"], batch, 1.0),
        _row(
            label,
            f"GradCAM at {gradcam.layer_name} (auto; "
            f"{paired_ratio(times, 'forward', 'GradCAM'):.2f}x of a raw forward pass)",
            seconds["GradCAM"],
            floor,
            1,
            seconds["to layer"],
            batch,
            paired_ratio(times, "to layer", "GradCAM"),
        ),
    ]


def language_model_cases(batch: int, repeats: int, only: list[str] | None = None) -> list[dict]:
    """Saliency, Integrated Gradients and Occlusion on keras-hub text models, token by token.

    Two models built from configs (random weights), 128 tokens, vocabulary
    8192: a GPT2-shaped causal LM (6 blocks of width 256, 4 heads, MLP 1024)
    explained on `NextToken` at the last position, and a BERT-shaped
    classifier of the same size explained on a class. The floors:

    * Saliency: one forward pass and the backward pass from the score to the
      token embedding's output, as a plain `GradientTape` computation that
      intercepts the embedding layer itself;
    * Integrated Gradients (`steps=16`): 16 such passes back to back;
    * Occlusion (`window=1`, every one of the 128 tokens): 128 raw forward
      passes that compute the explained score, timed at the batch size of
      its own occluded passes.
    """
    import keras_hub

    length, vocabulary, width = 128, 8192, 256
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocabulary, (batch, length)).astype("int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    keras.utils.set_random_seed(0)
    config = {
        "vocabulary_size": vocabulary,
        "num_layers": 6,
        "num_heads": 4,
        "hidden_dim": width,
        "intermediate_dim": 4 * width,
        "max_sequence_length": length,
    }
    gpt2 = keras_hub.models.GPT2CausalLM(
        backbone=keras_hub.models.GPT2Backbone(**config), preprocessor=None
    )
    bert_inputs = {**inputs, "segment_ids": np.zeros_like(ids)}
    bert = keras_hub.models.BertTextClassifier(
        backbone=keras_hub.models.BertBackbone(**config), num_classes=2, preprocessor=None
    )
    models = [
        (
            f"keras-hub GPT2-shaped LM ({length} tokens, 6 blocks, width {width})",
            gpt2,
            inputs,
            ke.targets.NextToken(7, position=-1),
            lambda outputs: outputs[:, -1, 7],
        ),
        (
            f"keras-hub BERT-shaped classifier ({length} tokens, 6 blocks, width {width})",
            bert,
            bert_inputs,
            1,
            lambda outputs: outputs[:, 1],
        ),
    ]
    rows = []
    for label, model, x, target, score_of in models:
        to_embedding = tape_to_layer(model, model.backbone.token_embedding, score_of)

        @tf.function
        def forward(features, model=model, score_of=score_of):
            # The pass that gives the explained score.
            return score_of(model(features, training=False))

        tensors = {name: tf.constant(value) for name, value in x.items()}
        saliency = ke.Saliency(model, batch_size=batch)
        ig = ke.IntegratedGradients(model, steps=16, batch_size=batch)
        occlusion = ke.Occlusion(model, window=1, batch_size=batch)
        # Occlusion's floor: one raw forward pass per token, at the batch size
        # of its own occluded passes (the tokens shared evenly among them).
        calls = -(-length // occlusion.window_batch_size)
        chunk = -(-length // calls)
        occluded = {name: tf.repeat(value, chunk, axis=0) for name, value in tensors.items()}
        functions = {
            "to embedding": lambda f=to_embedding, t=tensors: f(t).numpy(),
            "16 x to embedding": lambda f=to_embedding, t=tensors: [
                f(t).numpy() for _ in range(16)
            ],
            "forwards": lambda f=forward, o=occluded, c=calls: [f(o).numpy() for _ in range(c)],
            "Saliency": lambda e=saliency, t=target, x=x: e.explain(x, t),
            "IntegratedGradients": lambda e=ig, t=target, x=x: e.explain(x, t),
            "Occlusion": lambda e=occlusion, t=target, x=x: e.explain(x, t),
        }
        functions = {
            name: function
            for name, function in functions.items()
            if name[0].islower()
            or name[0].isdigit()
            or selected(name, only)
            or selected("language", only)
        }
        times = round_times(functions, repeats)
        seconds = best(times)
        floor = "forward + backward to the token embedding"
        rows.append(
            _row(
                label,
                f"raw {floor}",
                seconds["to embedding"],
                floor,
                1,
                seconds["to embedding"],
                batch,
                1.0,
            )
        )
        if "Saliency" in seconds:
            rows.append(
                _row(
                    label,
                    "Saliency",
                    seconds["Saliency"],
                    floor,
                    1,
                    seconds["to embedding"],
                    batch,
                    paired_ratio(times, "to embedding", "Saliency"),
                )
            )
        if "IntegratedGradients" in seconds:
            rows.append(
                _row(
                    label,
                    "IntegratedGradients (steps=16)",
                    seconds["IntegratedGradients"],
                    floor,
                    16,
                    seconds["16 x to embedding"] / 16,
                    batch,
                    paired_ratio(times, "16 x to embedding", "IntegratedGradients"),
                )
            )
        if "Occlusion" in seconds:
            per_pass = seconds["forwards"] / calls / chunk
            rows.append(
                _row(
                    label,
                    f"Occlusion (window 1: {length} tokens)",
                    seconds["Occlusion"],
                    "forward",
                    length,
                    per_pass,
                    batch,
                    paired_ratio(times, "forwards", "Occlusion", length / (calls * chunk)),
                )
            )
    return rows


def metric_cases(batch: int, size: int, repeats: int, only: list[str] | None = None) -> list[dict]:
    """The perturbation metrics on ResNet50V2 against the passes they need."""
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50V2(weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    maps = rng.uniform(0, 1, (batch, size, size)).astype("float32")
    # Smooth maps, like a CAM's: whole regions removed at once, the harder imputation.
    coarse = rng.uniform(0, 1, (batch, 7, 7, 1)).astype("float32")
    smooth_maps = tf.image.resize(coarse, (size, size), "bilinear").numpy()[..., 0]
    forward, _ = raw_passes(model)
    saliency = ke.Saliency(model, batch_size=batch, verbose=0)
    options = {"batch_size": batch, "verbose": 0}
    cases = [
        ("FaithfulnessCorrelation", lambda: ke.metrics.FaithfulnessCorrelation(**options), 100, 1),
        ("MuFidelity", lambda: ke.metrics.MuFidelity(**options), 200, 1),
        ("Infidelity", lambda: ke.metrics.Infidelity(**options), 10, 1),
        ("ROAD", lambda: ke.metrics.ROAD(**options), 9, 0),
        ("ROAD, smooth maps", lambda: ke.metrics.ROAD(**options), 9, 0),
    ]
    label = f"ResNet50V2 {size}x{size}"
    rows = []
    for name, build, count, clean in cases:
        if not selected(name, only):
            continue
        metric = build()
        calls = -(-count // metric.step_batch_size)
        chunk = -(-count // calls)
        perturbed = np.repeat(x, chunk, axis=0)

        def floor(calls=calls, perturbed=perturbed, clean=clean):
            return [forward(perturbed) for _ in range(calls)] + [forward(x)] * clean

        times = round_times(
            {
                "floor": floor,
                name: lambda m=metric, a=smooth_maps if "smooth" in name else maps: m(
                    a, x, model=model
                ),
            },
            repeats,
        )
        seconds = best(times)
        passes = count + clean
        # The floor block covers calls * chunk perturbations; the metric needs `count`.
        factor = passes / (calls * chunk + clean)
        per_pass = seconds["floor"] * factor / passes
        ratio = paired_ratio(times, "floor", name, factor)
        method = f"{name} ({count} perturbations)"
        rows.append(_row(label, method, seconds[name], "forward", passes, per_pass, batch, ratio))
    if selected("MaxSensitivity", only):
        metric = ke.metrics.MaxSensitivity(**options)
        count = metric.n_perturb_samples
        calls = -(-count // metric.step_batch_size)
        stacked = np.concatenate([x] * metric.step_batch_size)
        last = np.concatenate([x] * (count - (calls - 1) * metric.step_batch_size))

        def explained():
            runs = [saliency.explain(stacked) for _ in range(calls - 1)]
            return [saliency.explain(x), *runs, saliency.explain(last)]

        times = round_times(
            {
                "floor": explained,
                "MaxSensitivity": lambda: metric(saliency, x),
            },
            repeats,
        )
        seconds = best(times)
        ratio = paired_ratio(times, "floor", "MaxSensitivity")
        rows.append(
            _row(
                label,
                f"MaxSensitivity ({count} perturbations, Saliency)",
                seconds["MaxSensitivity"],
                "Saliency explanation",
                count + 1,
                seconds["floor"] / (count + 1),
                batch,
                ratio,
            )
        )
    if selected("evaluate", only):
        rows += _evaluate_rows(model, x, saliency, options, label, batch, repeats)
    return rows


def _evaluate_rows(model, x, saliency, options, label, batch, repeats) -> list[dict]:
    """`ke.metrics.evaluate` with its cell cache, first and resumed, against its work.

    The floor is the work itself: one Saliency explanation and one Deletion
    (20 steps) of it. A first run with `cache=` adds hashing the inputs and
    the weights and writing the cells; a resumed run reads them back.
    """
    import shutil
    import tempfile

    deletion = ke.metrics.Deletion(steps=20, **options)
    folder = tempfile.mkdtemp()
    fresh, kept = os.path.join(folder, "fresh"), os.path.join(folder, "kept")

    def evaluate(cache):
        return ke.metrics.evaluate(
            {"Saliency": saliency}, x, metrics={"deletion": deletion}, cache=cache
        )

    def first():
        shutil.rmtree(fresh, ignore_errors=True)
        return evaluate(fresh)

    times = round_times(
        {
            "floor": lambda: deletion(saliency.explain(x), x, model=model),
            "first": first,
            "resumed": lambda: evaluate(kept),
        },
        repeats,
    )
    shutil.rmtree(folder, ignore_errors=True)
    seconds = best(times)
    floor = "Saliency + Deletion (20 steps)"
    return [
        _row(
            label,
            "evaluate, cache= (first run)",
            seconds["first"],
            floor,
            1,
            seconds["floor"],
            batch,
            paired_ratio(times, "floor", "first"),
        ),
        _row(
            label,
            "evaluate, cache= (resumed: every cell read back)",
            seconds["resumed"],
            floor,
            1,
            seconds["floor"],
            batch,
            paired_ratio(times, "floor", "resumed"),
        ),
    ]


def _row(
    model: str,
    method: str,
    seconds: float,
    floor: str,
    passes: int,
    floor_seconds: float,
    images: int,
    ratio: float,
) -> dict:
    """A table row; `images`: how many images the method explains in `seconds`."""
    floor_total = floor_seconds * passes
    return {
        "model": model,
        "method": method,
        "images_per_s": images / seconds,
        "floor": f"{passes} x {floor}" if passes != 1 else floor,
        "floor_images_per_s": images / floor_total,
        "ratio": ratio,
    }


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| model | method | images/s | floor | floor images/s | ratio to floor |",
        "|---|---|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['method']} | {row['images_per_s']:.2f} | {row['floor']} "
            f"| {row['floor_images_per_s']:.2f} | {row['ratio']:.2f}x |"
        )
    return "\n".join(lines)


def target_table(rows: list[dict]) -> str:
    """The multi-target costs as a Markdown table."""
    lines = [
        "| method | 1 target (s/batch) | 10 targets (s/batch) | cost of 10 targets | limit |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['one']:.2f} | {row['ten']:.2f} | "
            f"{row['ten'] / row['one']:.2f}x | {row['limit']:.1f}x |"
        )
    return "\n".join(lines)


def layer_table(rows: list[dict]) -> str:
    """The cost of `layers=` against each single layer, as a Markdown table."""
    pair = ", ".join(LAYER_PAIR)
    lines = [
        f"| Grad-CAM alone | s/batch | layers=[{pair}] (s/batch) | cost of both | limit |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        # The limit holds against the earlier layer, whose backward pass both need.
        limit = f"{LAYER_LIMIT:.1f}x" if row["single"] == LAYER_PAIR[0] else "-"
        lines.append(
            f"| layer={row['single']} | {row['single_seconds']:.2f} | {row['both_seconds']:.2f} "
            f"| {row['cost']:.2f}x | {limit} |"
        )
    return "\n".join(lines)


def machine() -> str:
    """A one-line description of this machine."""
    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices()) or "CPU"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"devices: {devices}; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


def main() -> None:
    """Run the benchmark and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scorecam-batch", type=int, default=4)
    parser.add_argument("--scorecam-size", type=int, default=96)
    parser.add_argument("--ablationcam-batch", type=int, default=16)
    parser.add_argument("--perturbation-batch", type=int, default=16)
    parser.add_argument("--perturbation-size", type=int, default=96)
    parser.add_argument("--surrogate-batch", type=int, default=16)
    parser.add_argument("--surrogate-samples", type=int, default=256)
    parser.add_argument("--language-batch", type=int, default=8)
    parser.add_argument("--metric-batch", type=int, default=16)
    parser.add_argument(
        "--write", metavar="PATH", help="also write the table to this Markdown file"
    )
    parser.add_argument(
        "--only",
        metavar="NAME",
        nargs="+",
        help="time only the methods whose name contains one of these (case-insensitive)",
    )
    args = parser.parse_args()
    rows, targets, layers = resnet_cases(args.batch, args.size, args.repeats, args.only)
    print(table(rows), flush=True)
    if selected("ViT", args.only):
        rows += vit_cases(args.batch, args.repeats)
    if any(
        selected(name, args.only) for name in ("language", "Saliency", "Integrated", "Occlusion")
    ):
        rows += language_model_cases(args.language_batch, args.repeats, args.only)
    if selected("ScoreCAM", args.only):
        rows += scorecam_cases(args.scorecam_batch, args.scorecam_size, args.repeats)
    if selected("AblationCAM", args.only):
        rows += ablationcam_cases(args.ablationcam_batch, args.size, args.repeats)
    if selected("Occlusion", args.only) or selected("RISE", args.only):
        rows += perturbation_cases(
            args.perturbation_batch, args.perturbation_size, args.repeats, args.only
        )
    metric_names = (
        "FaithfulnessCorrelation",
        "MuFidelity",
        "Infidelity",
        "ROAD",
        "MaxSensitivity",
        "evaluate",
    )
    if any(selected(name, args.only) for name in metric_names):
        rows += metric_cases(args.metric_batch, args.size, args.repeats, args.only)
    if selected("KernelSHAP", args.only) or selected("LIME", args.only):
        rows += surrogate_cases(
            args.surrogate_batch,
            args.scorecam_size,
            args.surrogate_samples,
            args.repeats,
            args.only,
        )
    header = (
        f"Measured {datetime.date.today().isoformat()} on {machine()}; ResNet50V2 batch "
        f"{args.batch}, Score-CAM batch {args.scorecam_batch}, Ablation-CAM batch "
        f"{args.ablationcam_batch}, KernelSHAP and LIME batch {args.surrogate_batch}, "
        f"Occlusion and RISE batch {args.perturbation_batch}, language models batch "
        f"{args.language_batch}, metrics batch {args.metric_batch}; "
        f"best of {args.repeats} "
        "round-robin rounds after a warm-up; ratios are medians of per-round ratios."
    )
    print(header)
    print(table(rows))
    print()
    print(target_table(targets))
    print()
    print(layer_table(layers))
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(
                PAGE.format(
                    header=header,
                    table=table(rows),
                    targets=target_table(targets),
                    layers=layer_table(layers),
                )
            )
        print(f"wrote {args.write}")


PAGE = """# Performance

Every method is timed against its *floor*: the model passes it cannot avoid,
timed on the same batch in the same process by `benchmarks/benchmark.py`. A
ratio of 1.00x means the method costs exactly its floor; on a shared machine
the timings vary by a few percent, so a ratio slightly above 1 means "at the
floor". Score-CAM's floor is timed at the batch size of its own masked passes;
Ablation-CAM's is one forward pass plus one pass of the model's head (the
layers after the explained one) per channel, the head timed at the batch size
of its own ablated passes. Occlusion's and RISE's floors are one forward pass
per window or mask, timed at the batch size of their own perturbed passes.
Grad-CAM on a keras-hub ViT, explained at its automatic layer inside the
encoder's last block, is timed against one forward pass and the backward
pass from the logits to that layer of a plain `GradientTape` computation
that intercepts the same sublayer itself.

{header}

{table}

## Several targets in one call

Explaining 10 classes per image costs one forward pass plus 10 backward passes
through the head (Grad-CAM) or through the whole network (Saliency):

{targets}

## Several layers in one call

Grad-CAM with `layers=[...]` runs the model once and sends one backward pass
per target to all the layers, so two layers cost about as much as the earlier
of the two alone (whose backward pass is the longer), not the sum of both.
Against the later layer alone, the extra cost is the backward pass from it
down to the earlier one (here through the conv5 stage):

{layers}

Regenerate with `python benchmarks/benchmark.py --write docs/performance.md`.

## Integrated Gradients: memory

Integrated Gradients evaluates `steps` points of each sample's path
(`steps + 1` with the trapezoid rule), `step_batch_size` of them per pass of
the model, one pass after the other in a loop inside the compiled step: its
peak memory follows `step_batch_size`, not `steps`, so 256 steps run in the
memory of 16, where evaluating every point at once grows with `steps`:

--8<-- "ig-memory.md"

Regenerate with `python benchmarks/memory.py --write docs/snippets/ig-memory.md`.
"""


if __name__ == "__main__":
    main()

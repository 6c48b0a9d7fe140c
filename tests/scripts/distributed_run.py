"""Run explainers under a distribution strategy; used by tests/test_distributed.py.

Usage:
    python distributed_run.py mirrored OUT_DIR
        split the CPU into 2 logical devices and check, under a
        MirroredStrategy, every model x explainer x input form x sample count
        of `distributed_cases` against the same explainer without a strategy;
        then every form of targets, a dataset with an empty batch, a model
        built under the strategy's scope, an interrupted and resumed
        `explain_to_disk`, and two metrics.
        Writes OUT_DIR/report.json: the number of cases, the failures (each
        naming its case) and the seconds each part took.
    python distributed_run.py worker INDEX PORT0 PORT1 OUT.npz
        one worker of a 2-worker MultiWorkerMirroredStrategy on 127.0.0.1;
        explains the cases of `WORKER_CASES`, and the chief (INDEX 0) saves
        the maps, scores and targets of each, for the test to compare with
        its own single-device results. Exits with 1 if a case failed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

mode = sys.argv[1]
if mode == "worker":
    index, port0, port1, out = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
            "task": {"type": "worker", "index": index},
        }
    )
else:
    out = sys.argv[2]

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if mode in ("mirrored", "relevance"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import keras_explainable as ke  # noqa: E402
from distributed_cases import (  # noqa: E402
    ATOL,
    BATCH_SIZE,
    CLASSES,
    COUNTS,
    EMPTY_SLICE,
    EXPLAINERS,
    INPUT_FORMS,
    MODELS,
    RELEVANCE_EXPLAINERS,
    RELEVANCE_MODELS,
    RTOL,
    WORKER_CASES,
    assert_same,
    case_name,
    data,
    inputs,
    shapes_masks,
)

failures: list[str] = []
seconds: dict[str, float] = {}


#: Every explainer a matrix can name.
ALL_EXPLAINERS = {**EXPLAINERS, **RELEVANCE_EXPLAINERS}


def check(case: str, compare: Callable[..., None], *args: Any) -> None:
    """Run `compare(*args)`; record an exception or a mismatch under `case`.

    A worker stops at its first failure: the other worker may be waiting in a
    collective that will never complete, and the test stops it when this one
    exits.
    """
    if mode == "worker":
        print(f"case {case}", flush=True)  # the last one printed is where a worker hung
    try:
        compare(*args)
    except Exception as error:  # noqa: BLE001 - every failure is reported by its case
        lines = "".join(traceback.format_exception_only(error)).splitlines()
        # TensorFlow's errors carry the Python stack of the failed op; keep the error.
        lines = [line for line in lines if line.strip() and not line.lstrip().startswith("File ")]
        failures.append(f"{case}: {type(error).__name__}: " + "\n".join(lines[-12:]))
        if mode == "worker":
            print(f"FAILED {failures[-1]}", flush=True)
            os._exit(1)


def timed(part: str, run: Callable[[], None]) -> None:
    started = time.perf_counter()
    run()
    seconds[part] = round(time.perf_counter() - started, 1)


def matrix(model_names, explainer_names, save: dict | None = None) -> int:
    """Check every case, against single-device results under `mirrored`.

    With `save`, the distributed results are stored in it by case. Each
    explainer explains all its cases, so its step is traced once.

    Returns:
        The number of cases.
    """
    cases = 0
    for model_name in model_names:
        started = time.perf_counter()
        model = MODELS[model_name]()
        x_all, y_all = data(model_name, model, max(COUNTS))
        for explainer_name in explainer_names:
            build = ALL_EXPLAINERS[explainer_name]
            distributed = build(model, batch_size=BATCH_SIZE, verbose=0, strategy=strategy)
            expected = None
            if mode != "worker":
                expected = build(model, batch_size=BATCH_SIZE, verbose=0).explain(x_all, y_all)
                spread = np.ptp(expected.maps.reshape(len(x_all), -1), axis=1)
                if (spread > 0).sum() < len(x_all) // 2:
                    failures.append(
                        f"{model_name} / {explainer_name}: most single-device maps are "
                        f"constant (spread {spread}), so comparing them proves little; "
                        "change the model's weights"
                    )
            for count in COUNTS:
                for form in INPUT_FORMS:
                    case = case_name(model_name, explainer_name, form, count)
                    args = inputs(form, x_all[:count], y_all[:count])
                    want = None if expected is None else expected[:count]
                    check(case, explain_case, case, distributed, args, want, save)
                    cases += 1
        seconds[model_name] = round(time.perf_counter() - started, 1)
    return cases


def explain_case(
    case: str, explainer: ke.Explainer, args: tuple, expected: Any, save: dict | None
) -> None:
    """Explain one case; compare with `expected` if given, store in `save` if given."""
    got = explainer.explain(*args)
    if expected is not None:
        assert_same(got, expected)
    if save is not None:
        for name in ("maps", "scores", "targets"):
            save[f"{case}|{name}"] = getattr(got, name)


def second_logit(outputs: tf.Tensor) -> tf.Tensor:
    """A target callable."""
    return outputs[:, 1]


class WeightedClasses(ke.targets.Target):
    """A target with per-sample data: each sample's own weighting of the logits."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights.astype("float32")

    def sample_data(self) -> dict:
        return {"weights": self.weights}

    def scores(self, outputs: Any, data: dict) -> tf.Tensor:
        return tf.reduce_sum(outputs * data["weights"], axis=1, keepdims=True)


def target_and_input_forms() -> None:
    """Every form of `y`, a dataset of inputs alone, the model's own strategy.

    GradCAM on the plain CNN, with 9 samples: the last batch leaves a replica
    without samples.
    """
    model = MODELS["plain"]()
    x, labels = data("plain", model, EMPTY_SLICE)
    distributed = ke.GradCAM(model, batch_size=BATCH_SIZE, verbose=0, strategy=strategy)
    plain = ke.GradCAM(model, batch_size=BATCH_SIZE, verbose=0)
    targets = {
        "top class": None,
        "an int": 2,
        "(N,)": labels,
        "(N, 2)": np.stack([labels, (labels + 1) % CLASSES], axis=1),
        "a callable": second_logit,
        "Regression(1, sign=-1)": ke.targets.Regression(1, sign=-1),
        "a target with per-sample data": WeightedClasses(
            np.random.default_rng(3).normal(size=(EMPTY_SLICE, CLASSES))
        ),
    }
    inputs_only = tf.data.Dataset.from_tensor_slices(x).batch(BATCH_SIZE)
    for name, y in targets.items():
        expected = plain.explain(x, y)
        for form, x_form in (("array", x), ("dataset of x alone", inputs_only)):
            case = f"plain / GradCAM / y {name} / {form} / {EMPTY_SLICE} samples"
            check(case, explain_case, case, distributed, (x_form, y), expected, None)
    # The explainer's own per-sample data: one segmentation per input.
    segments = np.random.default_rng(4).integers(0, 3, (EMPTY_SLICE, *x.shape[1:-1]))
    shap = {"segments": segments, "samples": 12, "batch_size": BATCH_SIZE, "verbose": 0}
    expected = ke.KernelSHAP(model, **shap).explain(x, labels)
    for form, x_form in (("array", x), ("dataset of x alone", inputs_only)):
        case = f"plain / KernelSHAP(per-input segments) / {form} / {EMPTY_SLICE} samples"
        explainer = ke.KernelSHAP(model, strategy=strategy, **shap)
        check(case, explain_case, case, explainer, (x_form, labels), expected, None)
    expected = plain.explain(x, labels)
    uneven = (  # batches of 5, 0 and 4 samples
        tf.data.Dataset.from_tensors((x[:5], labels[:5]))
        .concatenate(tf.data.Dataset.from_tensors((x[:0], labels[:0])))
        .concatenate(tf.data.Dataset.from_tensors((x[5:], labels[5:])))
    )
    case = f"plain / GradCAM / dataset with an empty batch / {EMPTY_SLICE} samples"
    check(case, explain_case, case, distributed, (uneven,), expected, None)
    with strategy.scope():
        scoped = MODELS["plain"]()
    case = f"plain built under strategy.scope() / GradCAM / array / {EMPTY_SLICE} samples"
    check(case, explain_scoped, case, scoped, (x, labels), expected)


def explain_scoped(case: str, model: Any, args: tuple, expected: Any) -> None:
    """An explainer without `strategy=` explains with the model's strategy."""
    assert model.distribute_strategy is strategy, model.distribute_strategy
    explain_case(case, ke.GradCAM(model, batch_size=BATCH_SIZE, verbose=0), args, expected, None)


def resumed_to_disk() -> None:
    """An interrupted, resumed distributed run writes the single-device files."""
    model = MODELS["plain"]()
    count = 13  # batches of 4, 4, 4 and 1: the last leaves a replica without samples
    x, y = data("plain", model, count)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE)

    def failing(batch_index, batch):
        tf.debugging.assert_less(batch_index, tf.constant(2, tf.int64), message="simulated crash")
        return batch

    crashing = dataset.enumerate().map(failing)
    for name in ("GradCAM", "ScoreCAM"):
        build = EXPLAINERS[name]
        distributed = build(model, batch_size=BATCH_SIZE, verbose=0, strategy=strategy)
        plain = build(model, batch_size=BATCH_SIZE, verbose=0)
        resumed, straight = f"{out}/{name}-resumed", f"{out}/{name}-straight"

        def compare(distributed=distributed, plain=plain, resumed=resumed, straight=straight):
            try:
                distributed.explain_to_disk(crashing, resumed)
            except tf.errors.InvalidArgumentError as error:
                if "simulated crash" not in str(error):
                    raise
            else:
                raise AssertionError("the crashing dataset did not interrupt the run")
            survived = np.load(f"{resumed}/maps.npy").shape[0]
            assert survived == 2 * BATCH_SIZE, f"{survived} rows survived the crash"
            distributed.explain_to_disk(dataset, resumed)
            plain.explain_to_disk(dataset, straight)
            for part in ("maps", "scores", "targets"):
                got, want = np.load(f"{resumed}/{part}.npy"), np.load(f"{straight}/{part}.npy")
                assert got.shape == want.shape and len(want) == count, (part, got.shape)
                if part == "targets":
                    np.testing.assert_array_equal(got, want, err_msg=part)
                else:
                    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=part)

        check(f"explain_to_disk / plain / {name} / resumed / {count} samples", compare)


def metrics() -> None:
    """Metrics given a distributed explainer score as with a single-device one."""
    model = MODELS["demo"]()
    x, y = data("demo", model, EMPTY_SLICE)
    masks = shapes_masks(EMPTY_SLICE)
    distributed = ke.GradCAM(model, batch_size=BATCH_SIZE, verbose=0, strategy=strategy)
    plain = ke.GradCAM(model, batch_size=BATCH_SIZE, verbose=0)
    for metric, kwargs in (
        (ke.metrics.Deletion(steps=20, verbose=0), {}),
        (ke.metrics.PointingGame(verbose=0), {"masks": masks}),
    ):

        def compare(metric=metric, kwargs=kwargs) -> None:
            want = metric(plain, x, y, **kwargs).values
            got = metric(distributed, x, y, **kwargs).values
            assert np.isfinite(want).all(), want
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)

        check(f"{type(metric).__name__} / demo / GradCAM / {EMPTY_SLICE} samples", compare)


def task_targets() -> None:
    """Segmentation masks and detection boxes, one per sample, on the test_targets models."""
    import test_targets  # the segmenter and detector of tests/test_targets.py

    images = test_targets.IMAGES  # 5 samples: batches of 4 and 1, a replica without samples
    masks = ke.targets.Segmentation(test_targets.MASKS, test_targets.CLASSES)
    detector = test_targets.make_detector("dict")
    found = detector.predict(images, verbose=0)
    boxes = ke.targets.Box(found["boxes"][:, 0], found["classes"][:, 0].argmax(-1))
    cases = (
        (
            "Segmentation / GradCAM",
            test_targets.SEGMENTER,
            masks,
            ke.GradCAM,
            {"layer": "features"},
        ),
        ("Box / GradCAM", detector, boxes, ke.GradCAM, {"layer": "features"}),
        ("Box / Occlusion", detector, boxes, ke.Occlusion, {"window": 4}),
    )
    for name, model, target, method, options in cases:
        options = {**options, "batch_size": BATCH_SIZE, "verbose": 0}
        expected = method(model, **options).explain(images, target)
        distributed = method(model, strategy=strategy, **options)
        case = f"{name} / array / {len(images)} samples"
        check(case, explain_case, case, distributed, (images, target), expected, None)


started = time.perf_counter()
if mode in ("mirrored", "relevance"):
    os.makedirs(out, exist_ok=True)
    if mode == "relevance":
        cases = matrix(RELEVANCE_MODELS, RELEVANCE_EXPLAINERS)
    else:
        cases = matrix(MODELS, EXPLAINERS)
        timed("target and input forms", target_and_input_forms)
        timed("task targets", task_targets)
        timed("explain_to_disk", resumed_to_disk)
        timed("metrics", metrics)
    report = {
        "replicas": strategy.num_replicas_in_sync,
        "cases": cases,
        "failures": failures,
        "seconds": {"total": round(time.perf_counter() - started, 1), **seconds},
    }
    with open(os.path.join(out, "report.json"), "w") as handle:
        json.dump(report, handle, indent=1)
else:
    results: dict = {}
    cases = matrix(*WORKER_CASES, save=results)
    if index == 0:
        results["replicas"] = np.array(strategy.num_replicas_in_sync)
        results["cases"] = np.array(cases)
        np.savez(out, **results)
print(f"{mode}: {cases} cases in {time.perf_counter() - started:.1f} s {seconds}", flush=True)
for failure in failures:
    print(f"FAILED {failure}", flush=True)

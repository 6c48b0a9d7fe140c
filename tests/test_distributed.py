"""Explaining under `tf.distribute` strategies equals explaining on one device.

Each strategy runs in subprocesses (`scripts/distributed_run.py`): a
MirroredStrategy over 2 logical CPUs, and a MultiWorkerMirroredStrategy of 2
worker processes on 127.0.0.1. The cases are in `distributed_cases.py`; with
a batch size of 4 on 2 replicas, 9 samples leave one replica without samples
in the last batch, and 11 samples leave it a partial slice.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from distributed_cases import (
    BATCH_SIZE,
    COUNTS,
    EXPLAINERS,
    INPUT_FORMS,
    MODELS,
    RELEVANCE_EXPLAINERS,
    RELEVANCE_MODELS,
    WORKER_CASES,
    assert_same,
    case_name,
    data,
)

SCRIPT = Path(__file__).parent / "scripts" / "distributed_run.py"


def _launch(args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env, **kwargs)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _wait_all(processes: list[subprocess.Popen], timeout: float) -> list[int | None]:
    """Exit codes of all processes; stop early (codes None) when one fails.

    A worker that fails may leave the other waiting forever in a collective.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = [process.poll() for process in processes]
        if None not in codes or any(code not in (None, 0) for code in codes):
            return codes
        time.sleep(0.5)
    return [process.poll() for process in processes]


def _last_case(log: Path) -> str:
    """A worker's log from the last case it started (its failure, if any)."""
    text = log.read_text(errors="replace")
    start = text.rfind("\ncase ")
    return text[start + 1 :] if start >= 0 else text[-3000:]


def test_mirrored_strategy_equals_single_device(tmp_path):
    """Every model x explainer x input form x count, resumed runs to disk, metrics."""
    _check_mirrored(tmp_path, "mirrored", len(MODELS) * len(EXPLAINERS))


def _check_mirrored(tmp_path: Path, mode: str, pairs: int) -> None:
    """Run the distributed script in `mode`; every case equals its single-device result."""
    process = _launch([mode, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        log = process.communicate(timeout=600)[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, log[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["replicas"] == 2
    assert report["cases"] == pairs * len(INPUT_FORMS) * len(COUNTS)
    failures = report["failures"]
    if failures:
        names = "\n".join(failure.split(": ", 1)[0] for failure in failures)
        details = "\n\n".join(failures[:3])
        pytest.fail(f"{len(failures)} failed case(s):\n{names}\n\nThe first in full:\n\n{details}")


def test_mirrored_strategy_equals_single_device_for_lrp_and_deeplift(tmp_path):
    """LRP and DeepLIFT, under SmoothGrad and TTA: replicas with 2, 1 and no samples."""
    _check_mirrored(tmp_path, "relevance", len(RELEVANCE_MODELS) * len(RELEVANCE_EXPLAINERS))


def test_multi_worker_strategy_equals_single_device(tmp_path):
    """The chief's results equal this process's, without any strategy."""
    out = tmp_path / "chief.npz"
    ports = [str(p) for p in _free_ports(2)]
    # logs to files: a full pipe would block one worker, and the other with it
    logs = [(tmp_path / f"worker{index}.log").open("w") for index in range(2)]
    workers = [
        _launch(["worker", str(index), *ports, str(out)], stdout=log, stderr=subprocess.STDOUT)
        for index, log in enumerate(logs)
    ]
    try:
        # the single-device results, while the workers run
        model_names, explainer_names = WORKER_CASES
        expected = {}
        for model_name in model_names:
            model = MODELS[model_name]()
            x, y = data(model_name, model, max(COUNTS))
            for explainer_name in explainer_names:
                explainer = EXPLAINERS[explainer_name](model, batch_size=BATCH_SIZE, verbose=0)
                expected[model_name, explainer_name] = explainer.explain(x, y)
        codes = _wait_all(workers, timeout=600)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        for log in logs:
            log.close()
    if codes != [0, 0]:
        pytest.fail(
            "\n\n".join(
                f"worker {index} {'was stopped' if code is None else f'exited with {code}'}:\n"
                + _last_case(Path(log.name))
                for index, (code, log) in enumerate(zip(codes, logs, strict=True))
            )
        )
    results = np.load(out)
    assert int(results["replicas"]) == 2
    failures = []
    for (model_name, explainer_name), explanation in expected.items():
        for count in COUNTS:
            for form in INPUT_FORMS:
                case = case_name(model_name, explainer_name, form, count)
                got = types.SimpleNamespace(
                    **{name: results[f"{case}|{name}"] for name in ("maps", "scores", "targets")}
                )
                try:
                    assert_same(got, explanation[:count])
                except AssertionError as error:
                    failures.append(f"{case}: {error}")
    assert int(results["cases"]) == len(expected) * len(COUNTS) * len(INPUT_FORMS)
    assert not failures, "\n\n".join(failures)

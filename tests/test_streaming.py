"""Re-opening streamed runs: finished runs are read back, not recomputed."""

from __future__ import annotations

import numpy as np
import pytest

import keras_explainable as ke
from conftest import make_body_head


def test_finished_run_is_read_back_without_recomputing(tmp_path, images):
    _, _, model = make_body_head(seed=9)
    labels = np.arange(7) % 3
    explainer = ke.GradCAM(model, batch_size=3)
    first = explainer.explain_to_disk(images, tmp_path / "run", labels)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    stored = {name: np.array(getattr(first, name)) for name in ("maps", "scores", "targets")}

    # New weights: a recomputation would give other scores.
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 2.0, bias])
    again = explainer.explain_to_disk(images, tmp_path / "run", labels)
    for name, values in stored.items():
        np.testing.assert_array_equal(np.asarray(getattr(again, name)), values)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == stamps
    assert not np.allclose(explainer.explain(images, labels).scores, stored["scores"])

    with pytest.raises(FileExistsError, match=r"finished run.*resume=True"):
        explainer.explain_to_disk(images, tmp_path / "run", labels, resume=False)
    with pytest.raises(ValueError, match="other inputs or options"):
        ke.GradCAM(model, batch_size=4).explain_to_disk(images, tmp_path / "run", labels)

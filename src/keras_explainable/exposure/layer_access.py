"""How a method reads the explained layers: activations and gradients.

`LayerAccess` is the part of `Explainer` that a method's `_attribute` calls:
`_forward` (the explained layer's activations and the outputs, in one
forward pass), `_feature_gradients` and `_input_gradients` (each score's
gradient, one backward pass per target), and `_gradients`. A token layer's
tensors are laid out on its patch grid; while several layers are explained
(`layers=`), the model runs once and one backward pass per target serves all
of them, each layer reading its own share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.attribution import Attribution, FeatureGradients, InputGradients
from keras_explainable.errors import LayerError, ModelStructureError, TargetError
from keras_explainable.targets import Targets

__all__ = ["LayerAccess"]


class LayerAccess:
    """The helpers a method's `_attribute` uses to read the model (see `Explainer`).

    Needs, on the class it is mixed into: `_exposure` (the `Exposure`),
    `_layer_state` (a `threading.local`), `resize`, `_attribute` and
    `_postprocess`.
    """

    def _forward(self, inputs: tf.Tensor) -> tuple[tf.Tensor | None, tf.Tensor]:
        """Run the model; returns `(features, outputs)`.

        `features` are the explained layer's activations `(N, *spatial, C)`
        (a token layer's laid out on its patch grid, `(N, h, w, C)`), or None
        for methods that explain the input. While several layers are
        explained, they are the current layer's, and the model runs once for
        all the layers on the inputs being explained.
        """
        features, outputs = self._layer_outputs(inputs)
        if features is None:
            return None, outputs
        layer = self._exposure.layers[self._layer_index()]
        return layer.on_grid(features[self._layer_index()]), outputs

    def _layer_outputs(self, inputs: tf.Tensor) -> tuple[tuple | None, tf.Tensor]:
        """Every explained layer's output as the layer returns it, and the outputs."""
        current = self._current_pass(inputs)
        if current is not None and current.forward is not None:
            return current.forward
        features, outputs = self._exposure(inputs)
        if features is not None and not isinstance(features, tuple):
            features = (features,)
        if current is not None:
            current.forward = (features, outputs)
        return features, outputs

    def _gradients(self, scores: tf.Tensor, source: Any, what: str) -> Any:
        """`(N, L, *source.shape[1:])`: gradient of each score column w.r.t. source.

        Samples are independent in inference mode, so the gradient of the
        batch sum of score `l` gives every sample's gradient in one backward
        pass per target, which stops at `source`. `source` may be a tuple of
        tensors (the inputs of a model with several inputs): the gradients
        come back as a tuple, from the same backward passes.
        """
        sources = tf.nest.flatten(source)
        if len(sources) == 1:
            return self._shared_gradients(scores, sources, [what])[0]
        names = self._exposure.input_layout.names if what == "the input" else None
        whats = [
            f"input {names[index]!r}" if names else f"{what} {index}"
            for index in range(len(sources))
        ]
        return tuple(self._shared_gradients(scores, sources, whats))

    def _shared_gradients(
        self, scores: tf.Tensor, sources: Sequence[tf.Tensor], whats: Sequence[str]
    ) -> list[tf.Tensor]:
        """`_gradients` w.r.t. several sources, sharing one backward pass per target."""
        count = scores.shape[1]
        if count is None:
            raise TargetError("The number of targets per sample must be known.")
        columns: list[list[tf.Tensor]] = [[] for _ in sources]
        for column in range(count):
            gradients = tf.gradients(tf.reduce_sum(scores[:, column]), list(sources))
            for gradient, what, stack in zip(gradients, whats, columns, strict=True):
                if gradient is None:
                    self._no_gradient(what)
                stack.append(gradient)
        return [tf.stack(stack, axis=1) for stack in columns]

    def _no_gradient(self, what: str) -> None:
        """Raise the error for a source no gradient reaches."""
        dtype = self._exposure.input_dtype
        if what.startswith("input "):
            raise LayerError(
                f"The explained score does not depend on {what} (no gradient path): its "
                "map would be all zeros. Explain an output that this input feeds."
            )
        if what == "the input" and dtype is not None and not tf.as_dtype(dtype).is_floating:
            raise ModelStructureError(
                f"The model's input has integer dtype {dtype}, so no gradient "
                "reaches it and input-gradient maps would be all zeros. Build "
                "the model on a float input (keras.Input(..., dtype='float32')) "
                "and cast inside it if needed."
            )
        raise LayerError(
            f"The explained score does not depend on {what} (no gradient path): "
            "the map would be all zeros. Choose a layer that feeds the output."
        )

    def _feature_gradients(self, inputs: tf.Tensor, targets: Targets) -> FeatureGradients:
        """Activations of the explained layer and each score's gradient w.r.t. them.

        A token layer's activations `(N, T, C)` and gradients `(N, L, T, C)`
        are laid out on its patch grid, `(N, h, w, C)` and `(N, L, h, w, C)`.
        While several layers are explained, one backward pass per target
        gives the gradients of all of them, and each layer reads its own.
        """
        index = self._layer_index()
        features, outputs = self._layer_outputs(inputs)
        current = self._current_pass(inputs)
        cached = None if current is None else current.gradients_for(targets)
        if cached is None:
            scores, indices = targets.select(outputs)
            # Outside a multi-layer pass only the current layer's gradient is needed.
            wanted = range(len(features)) if current is not None else [index]
            computed = self._shared_gradients(
                scores,
                [features[number] for number in wanted],
                [f"layer {self._exposure.layers[number].name!r}" for number in wanted],
            )
            cached = (scores, indices, dict(zip(wanted, computed, strict=True)))
            if current is not None:
                current.remember(targets, cached)
        scores, indices, gradients = cached
        layer = self._exposure.layers[index]
        return FeatureGradients(
            layer.on_grid(features[index]), layer.on_grid(gradients[index]), scores, indices
        )

    def _layer_index(self) -> int:
        """The explained layer that `_forward` and `_feature_gradients` read now."""
        current = getattr(self._layer_state, "current", None)
        return 0 if current is None else current.index

    def _current_pass(self, inputs: tf.Tensor) -> _LayerPass | None:
        """The multi-layer pass explaining `inputs` in this thread, if any."""
        current = getattr(self._layer_state, "current", None)
        if current is None or current.inputs is not inputs:
            return None
        return current

    def _input_gradients(self, inputs: tf.Tensor, targets: Targets) -> InputGradients:
        """Each score's gradient w.r.t. the input."""
        _, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        gradients = self._gradients(scores, inputs, "the input")
        return InputGradients(gradients, scores, indices)

    def _attribute_each_layer(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        """`_attribute` once per explained layer on one shared pass; maps averaged."""
        count = len(self._exposure.layers)
        previous = getattr(self._layer_state, "current", None)
        current = _LayerPass(inputs)
        self._layer_state.current = current
        try:
            attributions = []
            for index in range(count):
                current.index = index
                attributions.append(self._attribute(inputs, targets))
        finally:
            self._layer_state.current = previous
        size = self._common_size(inputs, [attribution.maps for attribution in attributions])
        maps = [self._postprocess(attribution.maps, size) for attribution in attributions]
        first = attributions[0]
        notes = first.notes and {
            name: tf.add_n([attribution.notes[name] for attribution in attributions]) / count
            for name in first.notes
        }
        return Attribution(tf.add_n(maps) / count, first.scores, first.targets, notes)

    def _common_size(self, inputs: tf.Tensor, maps: list[tf.Tensor]) -> list:
        """The spatial size the layers' maps are averaged at.

        The input's size; with `resize=False`, that of the maps with the most
        positions (the input's when a map's size is known only at run time).
        """
        sizes = [list(layer_maps.shape[1:-1]) for layer_maps in maps]
        index = self._exposure.map_input
        if index is None:
            # The layers' maps fit no input: they are averaged at the finest size.
            return max(sizes, key=lambda layer_size: int(np.prod(layer_size)))
        if self._exposure.several_inputs:
            inputs = inputs[index]
        input_size = [
            tf.shape(inputs)[axis] if size is None else size
            for axis, size in enumerate(inputs.shape[1:-1], start=1)
        ]
        if self.resize or any(size is None for layer_size in sizes for size in layer_size):
            return input_size
        return max(sizes, key=lambda layer_size: int(np.prod(layer_size)))


@attrs.define(eq=False)
class _LayerPass:
    """One multi-layer `attribute` call: what its per-layer `_attribute` calls share.

    The forward pass on `inputs`, and per `Targets` the scores and the
    gradients of every layer, are computed by the first layer that asks and
    read by the others, so the model runs once and the backward pass is
    shared.
    """

    inputs: tf.Tensor
    index: int = 0
    forward: tuple | None = None
    _gradients: list = attrs.field(factory=list)

    def gradients_for(self, targets: Targets) -> tuple | None:
        """`(scores, indices, {layer: gradients})` computed for `targets`, if any."""
        for known, cached in self._gradients:
            if known is targets:
                return cached
        return None

    def remember(self, targets: Targets, cached: tuple) -> None:
        """Keep the scores and gradients computed for `targets`."""
        self._gradients.append((targets, cached))

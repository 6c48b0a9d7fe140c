"""Layer-wise Relevance Propagation (LRP): the score redistributed layer by layer to the input.

Bach, Binder, Montavon, Klauschen, Müller & Samek (2015), "On Pixel-Wise
Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
Propagation". https://doi.org/10.1371/journal.pone.0130140
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.errors import LRPRuleError, ModelStructureError
from keras_explainable.exposure import Exposure
from keras_explainable.exposure.lrp_rules import COMPOSITES, RULE_NAMES, Rule, make_rule
from keras_explainable.exposure.lrp_taps import GRADIENT, LRPPlan, lrp_plan
from keras_explainable.methods.input_attribution import InputAttributionExplainer
from keras_explainable.targets import Targets

__all__ = ["LRP"]


def _rule_name(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, Rule) and value not in RULE_NAMES:
        raise LRPRuleError(
            f"Unknown LRP rule {attribute.name}={value!r}; expected one of {list(RULE_NAMES)} "
            "or a keras_explainable.exposure.lrp_rules.Rule."
        )


def _composite_name(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in COMPOSITES:
        raise LRPRuleError(f"Unknown LRP composite {value!r}; expected one of {list(COMPOSITES)}.")


def _unsupported(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in (None, GRADIENT):
        raise LRPRuleError(f"unsupported= must be None or 'gradient'; got {value!r}.")


@attrs.define(eq=False)
class LRP(InputAttributionExplainer):
    """Layer-wise Relevance Propagation maps.

    The target score is handed back through the network as *relevance*,
    layer by layer: each Dense or convolution layer `z = W x + b`
    redistributes the relevance of its outputs to its inputs by a rule, and
    the relevance that reaches the input is the map (summed over channels,
    as `InputXGradient`). Rules (Zennit's definitions, Anders et al. 2021):

    - "zero" (LRP-0): `R_in = x * W^T (R / z)`; on every layer this is
      exactly gradient times input;
    - "epsilon" (LRP-ε, `epsilon=`): `z` stabilised by ε, so weak or
      contradictory contributions are absorbed;
    - "gamma" (LRP-γ, `gamma=`): positive weights favoured, `W + γW⁺`;
    - "alpha1beta0" = "zplus" (z⁺), "alpha2beta1": positive and negative
      contributions normalised separately and weighted α and β;
    - "flat", "wsquare" (w²): relevance spread over each output's receptive
      field evenly or by squared weights, whatever the inputs (usually on
      the first layer; on a hidden layer, the units a ReLU turned off get
      none, as in Zennit);
    - "zbox" (z^B, `low=`/`high=` bounds of the input): within the input's
      box, for the first layer.

    The rules apply to Dense layers and convolutions: Conv1D/2D/3D,
    depthwise, separable and transposed (Conv1D/2D/3DTranspose, whose
    composite rule is the convolutions').

    `rule=` puts one rule on every Dense and convolution; `composite=` names
    a composite (default "epsilon_plus_flat"): "epsilon_plus" (ε on Dense,
    z⁺ on convolutions), "epsilon_plus_flat" (and flat on the first
    layer), "epsilon_gamma_box" (z^B first, γ on convolutions, ε on Dense),
    "epsilon_alpha2_beta1" (α2β1 on convolutions, ε on Dense) and
    "epsilon_alpha2_beta1_flat" (and flat first). `rules=` overrides them
    per layer: `{"first": rule, keras.layers.Conv2D: rule, "path/to/layer":
    rule}` (a path or name wins over "first", which wins over a layer
    class). `rule_assignment()` lists what every layer got.

    Other layers: a BatchNormalization right after a Dense or convolution
    is folded into it while explaining (the model is unchanged); ReLU, max
    pooling (winner takes all), average pooling, Add (split in proportion
    to the contributions), Concatenate, Flatten, Reshape, padding and
    dropout keep their gradient, which is their LRP rule; other ReLU-family
    activations pass relevance through. A layer without a rule (attention,
    LayerNormalization) raises `UnsupportedLayerError`, unless
    `rules={path: "gradient"}` or `unsupported="gradient"` lets it keep its
    ordinary gradient.

    The rules are taps on the layers' calls that exist only while a step is
    traced (`keras_explainable.exposure.lrp_taps`), as modified gradients:
    one forward and one backward pass per target. The rules' backward passes
    use `tf.custom_gradient` (TensorFlow-only). Relevance is signed: 'auto'
    post-processing takes its absolute value before scaling each map to
    [0, 1], as for `InputXGradient`; `postprocess=None` keeps the signed
    relevance (which, without biases and with LRP-0, z⁺ or α1β0 on a ReLU
    network, sums to the explained score).

    Args:
        model: the model to explain (see `Explainer`).
        rule: one rule for every Dense and convolution layer (a name above
            or a `keras_explainable.exposure.lrp_rules.Rule`), or None.
        composite: a composite's name, or None (with `rule` None:
            "epsilon_plus_flat").
        rules: per-layer overrides, `{"first" | layer class | path: rule}`;
            "gradient" keeps a layer's ordinary gradient (any layer).
        epsilon: ε of the epsilon rule (default 1e-6, Zennit's).
        gamma: γ of the gamma rule (default 0.25).
        low: lowest input value, for "zbox" (scalar or per channel).
        high: highest input value, for "zbox".
        unsupported: None (default) to raise for a layer without a rule, or
            "gradient" to let it keep its ordinary gradient.
        channel_reduction: 'sum' (default), 'mean', 'l2' or None (one map
            per input channel).
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    ('auto'), or the signed relevance summed over channels (None).

    Raises:
        LRPRuleError: an unknown rule or composite, both `rule` and
            `composite`, "zbox" without `low`/`high`, a rules= key that names
            no layer, a rule on a layer that takes none, or z^B on a
            layer that is not a first layer.
        UnsupportedLayerError: a layer without a rule (named in the message).
        ModelStructureError: the model's layers cannot be found.

    Example:
        >>> expl = ke.LRP(model, composite="epsilon_plus_flat").explain(images, labels)
        >>> ke.LRP(model, rule="epsilon", epsilon=0.1).explain(images, labels)
        >>> lrp = ke.LRP(model, rules={"first": "zbox", keras.layers.Dense: "epsilon"},
        ...              low=-1.0, high=1.0)
        >>> lrp.rule_assignment()   # {"conv1": "zbox(...)", ...}

    References:
        Bach, Binder, Montavon, Klauschen, Müller & Samek (2015), "On
        Pixel-Wise Explanations for Non-Linear Classifier Decisions by
        Layer-Wise Relevance Propagation".
        <https://doi.org/10.1371/journal.pone.0130140>
        Montavon, Binder, Lapuschkin, Samek & Müller (2019), "Layer-Wise
        Relevance Propagation: An Overview".
        <https://doi.org/10.1007/978-3-030-28954-6_10>
    """

    rule: str | Rule | None = attrs.field(default=None, kw_only=True, validator=_rule_name)
    composite: str | None = attrs.field(default=None, kw_only=True, validator=_composite_name)
    rules: Mapping | None = attrs.field(default=None, kw_only=True)
    epsilon: float = attrs.field(default=1e-6, kw_only=True)
    gamma: float = attrs.field(default=0.25, kw_only=True)
    low: Any = attrs.field(default=None, kw_only=True)
    high: Any = attrs.field(default=None, kw_only=True)
    unsupported: str | None = attrs.field(default=None, kw_only=True, validator=_unsupported)
    _lrp: LRPPlan | None = attrs.field(default=None, init=False, repr=False)

    def _expose(self) -> Exposure:
        if self.rule is not None and self.composite is not None:
            raise LRPRuleError(
                f"Pass rule= (one rule everywhere) or composite=, not both; got "
                f"rule={self.rule!r} and composite={self.composite!r}."
            )
        composite = self.composite or (None if self.rule is not None else "epsilon_plus_flat")
        wanted = [self.rule, *(self.rules or {}).values()]
        if composite is not None:
            wanted.append(COMPOSITES[composite]["first"])
        for name in wanted:
            if name != GRADIENT and name is not None:
                self._make(name)  # unknown names and zbox without bounds fail before mapping
        exposure = super()._expose()
        if exposure.model_map is None:
            raise ModelStructureError(
                "LRP needs the model's layers: build the model (call it once on a batch) "
                "so that its inputs are known."
            )
        self._lrp = lrp_plan(
            exposure.model_map,
            exposure.taps,
            rule=self.rule,
            composite=composite,
            rules=self.rules,
            unsupported=self.unsupported,
            make=self._make,
        )
        kept = tuple(tap for tap in exposure.taps if tap not in self._lrp.dropped)
        return attrs.evolve(exposure, taps=(*kept, *self._lrp.taps))

    def _make(self, name: Any) -> Rule:
        return make_rule(name, epsilon=self.epsilon, gamma=self.gamma, low=self.low, high=self.high)

    def rule_assignment(self) -> dict[str, str]:
        """What LRP does at each layer call: `{path: rule}`, in call order.

        A rule's description (`"epsilon(epsilon=1e-06)"`, z⁺ is
        `"alphabeta(alpha=1.0, beta=0.0)"`), `"folded into '<path>'"` for a
        BatchNormalization folded into the layer before it, `"pass-through"`,
        `"logits"` (a softmax whose logits are explained) or `"gradient"`.

        Example:
            >>> ke.LRP(model, composite="epsilon_plus").rule_assignment()["conv1"]
            'alphabeta(alpha=1.0, beta=0.0)'
        """
        return dict(self._lrp.assignment)

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        result = self._input_gradients(inputs, targets)
        relevance = result.gradients
        if not self._lrp.relevance_at_input:
            relevance = tf.nest.map_structure(lambda g, x: g * x[:, None], relevance, inputs)
        return result.attribution(self._maps(relevance))

"""Everything that reaches into a model, and what it offers the methods.

A method never manages hooks or graphs; it asks its `Exposure` (built by
`expose`) for:

- the explained layers' activations and the scores, from one forward pass
  (`Exposure.__call__`, `Exposure.forward`), gradients of the scores with
  respect to them (`LayerAccess`, the part of `Explainer` methods call);
- the outputs with a layer's output replaced (`Exposure.replaced`), or the
  part of a functional model after the layer (`Exposure.head`);
- other backward rules for the model's ReLUs (`expose(relu_gradient=...)`,
  `ordinary_relu_gradients`);
- the logits behind a softmax or sigmoid output (`Exposure.stripped_activation`);
- a text model's embeddings (`Exposure.embed`, `TokenEmbedding`).

Underneath, the package reaches any layer call of a model through taps
(`taps`: observe, replace, re-rule), found by tracing the model once
(`model_map`), named by paths (`addressing`, `list_layers`) and chosen
automatically when not named (`selection`).
"""

from keras_explainable.exposure.addressing import LayerInfo, LayerSpec, LayerTable
from keras_explainable.exposure.core import ALL_OUTPUTS, Exposure, Forward, ReplacingHead, expose
from keras_explainable.exposure.graph import Head
from keras_explainable.exposure.input_layout import InputLayout
from keras_explainable.exposure.listing import list_layers
from keras_explainable.exposure.relu_rules import ReLUGradient, ordinary_relu_gradients
from keras_explainable.exposure.selection import ExplainedLayer
from keras_explainable.exposure.split_model import SplitModel
from keras_explainable.exposure.taps import (
    CallSite,
    Observe,
    PreActivation,
    Replace,
    Tap,
    TapSession,
)
from keras_explainable.exposure.text import TokenEmbedding

__all__ = [
    "ALL_OUTPUTS",
    "CallSite",
    "ExplainedLayer",
    "Exposure",
    "Forward",
    "Head",
    "InputLayout",
    "LayerInfo",
    "LayerSpec",
    "LayerTable",
    "Observe",
    "PreActivation",
    "ReLUGradient",
    "ReplacingHead",
    "Replace",
    "SplitModel",
    "Tap",
    "TapSession",
    "TokenEmbedding",
    "expose",
    "list_layers",
    "ordinary_relu_gradients",
]

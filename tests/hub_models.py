"""Tiny keras-hub models built from configs (no presets, no download), seeded.

Each factory builds a backbone with tiny dimensions and its task model with
`preprocessor=None`, on 32x32 images (64x64 for the detector), with 3
classes. keras-hub is an optional extra: import this module only after
`pytest.importorskip("keras_hub")`.
"""

from __future__ import annotations

import keras
import keras_hub

IMAGE = 32


def _shape(size: int = IMAGE) -> tuple:
    return (size, size, 3)


def vit(seed: int = 0, num_layers: int = 2, patch_size: int = 8, classes: int = 3) -> keras.Model:
    """A class token, then (32 / patch_size)**2 patch tokens; the head reads the class token."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=_shape(),
        patch_size=patch_size,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
    )
    return keras_hub.models.ViTImageClassifier(
        backbone=backbone, num_classes=classes, preprocessor=None
    )


def deit(seed: int = 0) -> keras.Model:
    """A class and a distillation token, then 16 patch tokens."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.DeiTBackbone(
        image_shape=_shape(),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
    )
    return keras_hub.models.DeiTImageClassifier(backbone=backbone, num_classes=3, preprocessor=None)


def swin(seed: int = 0) -> keras.Model:
    """16x16 then 8x8 tokens in 4x4 windows (the second block of a stage shifted)."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.SwinTransformerBackbone(
        image_shape=_shape(),
        patch_size=2,
        embed_dim=16,
        depths=[2, 2],
        num_heads=[2, 2],
        window_size=4,
        mlp_ratio=2.0,
    )
    return keras_hub.models.SwinTransformerImageClassifier(
        backbone=backbone, num_classes=3, preprocessor=None
    )


def dinov2(seed: int = 0, registers: int = 2) -> keras.Model:
    """A DINOv2 backbone (class token, `registers` register tokens), token 0 into a Dense."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.DINOV2Backbone(
        patch_size=8,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        num_register_tokens=registers,
        image_shape=_shape(),
        position_embedding_shape=_shape(),
    )
    images = keras.Input(_shape(), name="images")
    tokens = backbone({"images": images})
    class_token = keras.layers.Lambda(lambda t: t[:, 0], name="class_token")(tokens)
    outputs = keras.layers.Dense(3, name="predictions")(class_token)
    return keras.Model(images, outputs, name="dinov2_classifier")


def _resnet_encoder(filters: list, strides: list, size: int = IMAGE) -> keras.Model:
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=filters,
        stackwise_num_blocks=[1] * len(filters),
        stackwise_num_strides=strides,
        block_type="basic_block",
        image_shape=_shape(size),
    )


def resnet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    backbone = _resnet_encoder([64, 32], [1, 2])
    return keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=3, preprocessor=None
    )


def efficientnet(seed: int = 0) -> keras.Model:
    """EfficientNetV2 blocks: composite layers (FusedMBConvBlock, MBConvBlock)."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0],
        stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3],
        stackwise_num_repeats=[1, 2],
        stackwise_input_filters=[8, 16],
        stackwise_output_filters=[16, 16],
        stackwise_expansion_ratios=[1, 2],
        stackwise_squeeze_and_excite_ratios=[0.0, 0.25],
        stackwise_strides=[1, 2],
        stackwise_block_types=["fused", "unfused"],
        num_features=32,
        input_shape=_shape(),
    )
    return keras_hub.models.EfficientNetImageClassifier(
        backbone=backbone, num_classes=3, preprocessor=None
    )


def mobilenet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.MobileNetBackbone(
        stackwise_expansion=[[16, 24], [32, 32]],
        stackwise_num_blocks=[2, 2],
        stackwise_num_filters=[[16, 16], [24, 24]],
        stackwise_kernel_size=[[3, 3], [5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1]],
        stackwise_se_ratio=[[None, None], [0.25, 0.25]],
        stackwise_activation=[["relu", "relu"], ["hard_swish", "hard_swish"]],
        stackwise_padding=[[1, 1], [2, 2]],
        output_num_filters=32,
        depthwise_filters=8,
        depthwise_stride=2,
        depthwise_residual=False,
        last_layer_filter=32,
        squeeze_and_excite=0.5,
        input_num_filters=8,
        image_shape=_shape(),
    )
    return keras_hub.models.MobileNetImageClassifier(
        backbone=backbone, num_classes=3, num_features=16, preprocessor=None
    )


def densenet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.DenseNetBackbone(
        stackwise_num_repeats=[2, 2], growth_rate=8, image_shape=_shape()
    )
    return keras_hub.models.DenseNetImageClassifier(
        backbone=backbone, num_classes=3, preprocessor=None
    )


def vgg(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1, 2], stackwise_num_filters=[8, 16], image_shape=_shape()
    )
    return keras_hub.models.VGGImageClassifier(
        backbone=backbone,
        num_classes=3,
        pooling="avg",
        pooling_hidden_dim=16,
        preprocessor=None,
    )


def _mit(hidden_dims: tuple = (8, 16)) -> keras.Model:
    return keras_hub.models.MiTBackbone(
        layerwise_depths=[1, 1],
        num_layers=2,
        layerwise_num_heads=[1, 2],
        layerwise_sr_ratios=[2, 1],
        max_drop_path_rate=0.1,
        layerwise_patch_sizes=[7, 3],
        layerwise_strides=[4, 2],
        image_shape=_shape(),
        hidden_dims=list(hidden_dims),
    )


def mit(seed: int = 0) -> keras.Model:
    """A MiT (SegFormer) encoder as a classifier: its stages end on the image grid."""
    keras.utils.set_random_seed(seed)
    return keras_hub.models.MiTImageClassifier(backbone=_mit(), num_classes=3, preprocessor=None)


def deeplabv3(seed: int = 0) -> keras.Model:
    """ASPP on a tiny ResNet, upsampled to the image, then the classifier convolution."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=_resnet_encoder([64, 16], [1, 2]),
        spatial_pyramid_pooling_key="P3",
        upsampling_size=2,
        dilation_rates=[2, 4],
        low_level_feature_key="P2",
        projection_filters=8,
        image_shape=_shape(),
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(
        backbone=backbone, num_classes=3, preprocessor=None
    )


def segformer(seed: int = 0) -> keras.Model:
    """The MiT encoder, an all-MLP decoder, a classifier convolution, resized to the image."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=_mit(), projection_filters=16)
    return keras_hub.models.SegFormerImageSegmenter(
        backbone=backbone, num_classes=3, preprocessor=None
    )


def retinanet(seed: int = 0) -> keras.Model:
    """Raw outputs: {"bbox_regression": (N, 720, 4) anchor deltas, "cls_logits": (N, 720, 3)}."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=_resnet_encoder([64, 16, 16], [1, 2, 2], size=64),
        min_level=3,
        max_level=4,
        use_p5=False,
        image_shape=_shape(64),
    )
    return keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=3, pre_logits_num_conv_layers=1, preprocessor=None
    )


CLASSIFIERS = {
    "vit": vit,
    "deit": deit,
    "swin": swin,
    "dinov2": dinov2,
    "mit": mit,
    "resnet": resnet,
    "efficientnet": efficientnet,
    "mobilenet": mobilenet,
    "densenet": densenet,
    "vgg": vgg,
}
SEGMENTERS = {"deeplabv3": deeplabv3, "segformer": segformer}

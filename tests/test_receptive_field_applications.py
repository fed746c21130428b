"""Receptive fields of every keras.applications family against the gradient's support.

Each model is built once (weights=None, 32x32 inputs). For a few layers of each family, chosen
before and after residual adds (ResNet's Add layers, ConvNeXt's ``x + h`` operations), dense
concatenations, ConvNeXt's LayerScale and EfficientNet's squeeze-and-excitation gates, and inside
nested models, the field that ``region`` computes is compared with the one the gradient of the
linear twin measures (``empirical_support``): for EVERY location the bounding box of the
measured support is exactly the region, clipped to the image. (The region may in general be a
superset of the support near the border, or where zero weights cut a path; no layer checked
here shows either: Keras' default initializers draw no zero kernel entries and BatchNorm's
gammas start at 1.) The hand-derived (size, jump, start) pin the arithmetic.
"""
import dataclasses

import keras
import numpy as np
import pytest
from keras import layers as L

from cnn_helper import Feature, inverting
from cnn_helper import receptive_field as rf

SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def zoo():
    """family name -> the model, built on first use and kept for the module."""
    built = {}

    def get(family):
        if family not in built:
            keras.utils.set_random_seed(0)
            built[family] = getattr(keras.applications, family)(
                weights=None, include_top=False, input_shape=SHAPE)
        return built[family]

    return get


def bbox(mask):
    """The bounding box of a boolean mask as slices (None when the mask is empty)."""
    where = np.argwhere(mask)
    if not len(where):
        return None
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(where.min(0), where.max(0)))


def assert_region_is_the_support(model, layer, **kwargs):
    """For every location of ``layer``: the measured support's bounding box IS region()."""
    f = rf.field(model, layer, **kwargs)
    where = [tuple(int(i) for i in idx) for idx in np.ndindex(*f.shape)]
    support = rf.empirical_support(model, layer, where, **kwargs)
    for location, s in zip(where, support):
        assert bbox(s) == rf.region(model, layer, location, **kwargs), (layer, location)
    return f


# (family, layer, kwargs of compute, hand-derived (size, jump, start) per axis); per axis a
# kxk conv of stride s and left padding p maps size += (k-1) jump, jump *= s,
# start += ((k-1)/2 - p) jump; a merge takes the union of its inputs' boxes.
CASES = [
    # VGG16: 3x3 "same" convs add 2 jump, 2x2 pools add 1 jump and double it
    ("VGG16", "block3_conv1", {}, (24, 4, 1.5)),     # 16 (block2_pool) + 2*4
    ("VGG16", "block4_pool", {}, (100, 16, 7.5)),     # clipped at every location
    # ResNet50: conv1 7x7/2 after padding 3, pool 3x3/2 after padding 1: 11, jump 4, start 0
    ("ResNet50", "conv2_block1_3_conv", {}, (19, 4, 0.0)),   # the residual path: 1x1, 3x3, 1x1
    ("ResNet50", "conv2_block1_out", {}, (19, 4, 0.0)),      # after the add with the 1x1 shortcut
    ("ResNet50", "conv3_block1_out", {}, (51, 8, 0.0)),      # strided block: 35 + 2*8
    # MobileNetV2: Conv1 3x3/2 same on 32 (pad_total 1, p 0): 3, 2, 1; depthwise 3x3 each
    ("MobileNetV2", "block_2_add", {}, (19, 4, 3.0)),        # after the residual add
    ("MobileNetV2", "block_3_expand_relu", {}, (19, 4, 3.0)),
    # EfficientNetB0: stem 3x3/2 after ZeroPadding((0, 1)): 3, 2, 1; block1a depthwise: 7
    ("EfficientNetB0", "block1a_activation", {}, (7, 2, 1.0)),   # just before the first gate
    ("EfficientNetB0", "block2b_add", {"gates": "local"}, (19, 4, 3.0)),   # 2 gates, an add
    # DenseNet121: like ResNet up to pool1 (11, 4, 0); each dense layer 1x1 then 3x3: + 8
    ("DenseNet121", "conv2_block1_concat", {}, (19, 4, 0.0)),     # 11 + 8, concatenated
    ("DenseNet121", "pool2_pool", {}, (63, 8, 2.0)),          # 11 + 6*8 = 59, avg 2x2/2: + 4
    # ConvNeXtTiny: stem (a nested Sequential) 4x4/4: 4, 4, 1.5; depthwise 7x7: + 6*4; the
    # pointwise convs (Dense) and LayerScale keep the field
    ("ConvNeXtTiny", "convnext_tiny_stage_0_block_0_pointwise_conv_2", {}, (28, 4, 1.5)),
    # after the residual x + h (an operation): union(4, 28) = 28, then its depthwise: + 24
    ("ConvNeXtTiny", "convnext_tiny_stage_0_block_1_depthwise_conv", {}, (52, 4, 1.5)),
    # 3 blocks: 4 + 3*24 = 76; the nested downsampling 2x2/2: 80, 8, 1.5 + 0.5*4
    ("ConvNeXtTiny", "convnext_tiny_downsampling_block_0/convnext_tiny_downsampling_conv_0", {},
     (80, 8, 3.5)),
]


@pytest.mark.parametrize("family, layer, kwargs, expected", CASES,
                         ids=[f"{c[0]}-{c[1].split('/')[-1]}" for c in CASES])
def test_field_is_the_measured_support(zoo, family, layer, kwargs, expected):
    f = assert_region_is_the_support(zoo(family), layer, **kwargs)
    size, jump, start = expected
    assert (f.size, f.jump, f.start) == ((size,) * 2, (jump,) * 2, (start,) * 2)


def test_efficientnet_gates_are_the_whole_input_unless_asked(zoo):
    """The truth by default: after the first squeeze-and-excitation every location depends on
    the whole image (the gradient says so); gates="local" names the gates it leaves out."""
    model = zoo("EfficientNetB0")
    whole = rf.compute(model)["block1a_project_bn"]
    assert not whole.is_local and "block1a_se_excite" in whole.whole_input
    with pytest.raises(ValueError, match="gates='local'"):
        rf.region(model, "block2b_add", (3, 3))
    assert rf.empirical_support(model, "block1a_project_bn", (8, 8)).all()
    local = rf.field(model, "block2b_add", gates="local")
    assert local.gates == ("block1a_se_excite", "block2a_se_excite", "block2b_se_excite")
    assert rf.field(model, "block1a_activation").gates == ()


def test_convnext_layer_scale_is_per_channel(zoo):
    fields = rf.compute(zoo("ConvNeXtTiny"))
    assert all(f.is_local for f in fields.values() if f.kind == "LayerScale")
    assert sum(f.kind == "LayerScale" for f in fields.values()) == 18


def test_inner_layers_of_a_nested_base_by_path():
    """Transfer learning: a base model nested in a head (functional and Sequential): its inner
    layers by "base/inner" path (and by bare name) have the base's own fields, and the
    gradient through the whole model agrees."""
    keras.utils.set_random_seed(1)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=SHAPE,
                                          alpha=0.35)
    inputs = keras.Input(SHAPE)
    head = keras.Model(inputs, L.Dense(3)(L.GlobalAveragePooling2D()(base(inputs))))
    stacked = keras.Sequential([keras.Input(SHAPE), base, L.GlobalAveragePooling2D(),
                                L.Dense(3)])
    own = rf.field(base, "block_3_expand_relu")
    path = f"{base.name}/block_3_expand_relu"
    for model in (head, stacked):
        assert rf.field(model, path) == dataclasses.replace(own, layer=path)
        assert rf.field(model, "block_3_expand_relu") == rf.field(model, path)
        assert rf.region(model, path, (2, 5)) == rf.region(base, "block_3_expand_relu", (2, 5))
    assert_region_is_the_support(head, path)


def test_zeiler_fergus_passes_gates_on(zoo):
    model = zoo("EfficientNetB0")
    x = np.random.default_rng(0).uniform(0, 255, (6,) + SHAPE).astype("float32")
    with pytest.raises(ValueError, match="gates='local'"):
        inverting.zeiler_fergus(model, x, Feature("block2b_add", 0), count=2)
    zf = inverting.zeiler_fergus(model, x, Feature("block2b_add", 0), count=2, gates="local")
    assert zf.gates == ("block1a_se_excite", "block2a_se_excite", "block2b_se_excite")
    for location, region in zip(zf.locations, zf.regions):
        assert region == rf.region(model, "block2b_add", tuple(int(i) for i in location),
                                   gates="local")
    before = inverting.zeiler_fergus(model, x, Feature("block1a_activation", 1), count=2)
    assert before.gates == () and all(hi - lo == 7 for window in before.windows
                                      for lo, hi in window)
    outside = before.saliency[0].copy()
    outside[before.regions[0]] = 0
    assert np.all(outside == 0)      # before any gate the saliency vanishes outside the field

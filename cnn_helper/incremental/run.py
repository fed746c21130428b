"""Running a plan: the clean pass once per image, then compiled steps over batches of occluded
copies that recompute every windowed tensor from the regions it reads."""
from __future__ import annotations

import math

import numpy as np

from .. import _graph
from .plan import Plan, sliding_window

# --------------------------------------------------------------------------- running a plan
# TensorFlow functions, traced once per plan inside the compiled steps below.


def region_indices(start, length) -> tuple:
    """The rows (B, h) and cols (B, w) of the region [start, start + length) of each copy."""
    import tensorflow as tf

    return (start[:, :1] + tf.range(length[0])[None], start[:, 1:] + tf.range(length[1])[None])


def inside(rows, cols, row_bounds, col_bounds):
    """(B, h, w, 1): whether each (row, col) of a region lies in [lo, hi) on both axes; bounds
    are pairs of (B, 1) tensors or numbers."""
    in_rows = (rows >= row_bounds[0]) & (rows < row_bounds[1])
    in_cols = (cols >= col_bounds[0]) & (cols < col_bounds[1])
    return in_rows[:, :, None, None] & in_cols[:, None, :, None]


def read_region(clean, pad, start, length, window=None, window_start=None):
    """The region [start, start + length) of a tensor for each of B copies: (B, h, w, C).

    clean        : the tensor for the un-occluded image (1, H, W, C), padded by ``pad`` =
                   (rows before, cols before) so that regions starting left of 0 lie inside
    start        : (B, 2) the region's top-left location, in the tensor's own coordinates
    window       : (B, h', w', C) the tensor's recomputed window, pasted over the clean values
                   where it overlaps the region; window_start (B, 2): where it sits

    One gather: the clean locations are numbered r W + c, the B windows' after them, and each
    location of the region takes the number of its window value where it has one, else of its
    clean value (no tensor wider than the region is made, whatever the map's size).
    """
    import tensorflow as tf

    rows, cols = region_indices(start, length)
    width, channels = clean.shape[2], clean.shape[-1]
    values = tf.reshape(clean[0], (-1, channels))
    index = ((rows + pad[0]) * width)[:, :, None] + (cols + pad[1])[:, None, :]
    if window is None:
        return tf.gather(values, index)
    r, c = rows - window_start[:, :1], cols - window_start[:, 1:]
    h, w = window.shape[1], window.shape[2]
    first = tf.shape(values)[0] + tf.range(tf.shape(window)[0])[:, None] * (h * w)    # (B, 1)
    pasted = (first + tf.clip_by_value(r, 0, h - 1) * w)[:, :, None] + \
        tf.clip_by_value(c, 0, w - 1)[:, None, :]
    index = tf.where(inside(r, c, (0, h), (0, w))[..., 0], pasted, index)
    return tf.gather(tf.concat([values, tf.reshape(window, (-1, channels))], 0), index)


def _sliding(layer, x, valid=None):
    """``layer`` (a ``sliding_window``) on a region x that already holds its padding, computed
    with padding "valid" and the layer's own weights, as its ``call`` computes it. ``valid``:
    1 on the region's locations inside the tensor, 0 on padding (average pooling counts those
    only, as Keras' "same" does)."""
    from keras import ops

    op = sliding_window(layer).op
    if op in ("pad", "crop"):
        return x                                 # the region read is already padded / cropped
    x = ops.cast(x, layer.compute_dtype)
    if op == "max_pool":
        return ops.max_pool(x, layer.pool_size, layer.strides, "valid")
    if op == "average_pool":
        y = ops.average_pool(x, layer.pool_size, layer.strides, "valid")
        if valid is None:
            return y
        return y / ops.cast(ops.average_pool(valid, layer.pool_size, layer.strides, "valid"),
                            y.dtype)

    def weight(w):
        return ops.cast(w, layer.compute_dtype)

    if op == "conv":
        y = ops.conv(x, weight(layer.kernel), layer.strides, "valid",
                     dilation_rate=layer.dilation_rate)
    elif op == "depthwise_conv":
        y = ops.depthwise_conv(x, weight(layer.kernel), layer.strides, "valid",
                               dilation_rate=layer.dilation_rate)
    else:
        y = ops.separable_conv(x, weight(layer.depthwise_kernel), weight(layer.pointwise_kernel),
                               layer.strides, "valid", dilation_rate=layer.dilation_rate)
    if layer.use_bias:
        y = y + weight(layer.bias)
    return y if layer.activation is None else layer.activation(y)


def pad_value(layer) -> float:
    """What a sliding layer's padding holds: -inf for max pooling (padding never wins), else 0
    (zero padding; average pooling divides by the count of real locations instead)."""
    return -np.inf if sliding_window(layer).op == "max_pool" else 0.0


def clean_needs(plan: Plan) -> list:
    """The clean tensors a run of ``plan`` reads: (tensor number, pad (before, after) per axis,
    pad value), in a fixed order: each sliding layer's padded input, each windowed tensor read
    over another window (merges) or pasted into a whole tensor, and the target."""
    needs = []

    def need(key):
        if key not in needs:
            needs.append(key)

    no_pad = ((0, 0), (0, 0))
    for step in plan.steps:
        for t in step.inputs:
            if step.kind == "window":
                need((t, step.geometry.pad, pad_value(step.call.layer)))
            elif t in plan.lengths and (step.kind == "full" or not plan.same_window(
                    t, step.call.outputs[0])):
                need((t, no_pad, 0.0))
    if plan.target in plan.lengths:
        need((plan.target, no_pad, 0.0))
    return needs


def run_clean(plan: Plan, x) -> dict:
    """Every tensor of the plan for the un-occluded batch x: {tensor number: value}."""
    values = {plan.source: x}
    for step in plan.steps:
        values.update(zip(step.call.outputs, step.call.apply(values)))
    return values


def padded_cleans(plan: Plan, values: dict) -> list:
    """The clean tensors of ``clean_needs(plan)``, each padded as it is needed."""
    from keras import ops

    return [ops.pad(values[t], ((0, 0),) + pad + ((0, 0),), constant_values=value)
            if pad != ((0, 0), (0, 0)) else values[t] for t, pad, value in clean_needs(plan)]


class _Run:
    """One run of a plan on B occluded copies: the windows and whole tensors computed so far.

    cleans : the padded clean tensors (``clean_needs`` order); starts: {windowed tensor number:
    (B, 2) window starts}; windows: {number: (B, h, w, C)}; wholes: {number: (B, ...)}."""

    def __init__(self, plan, cleans, offsets):
        self.plan = plan
        self.cleans = dict(zip(clean_needs(plan), cleans))
        self.starts = {t: offsets[i] for i, t in enumerate(plan.windowed)}
        self.windows, self.wholes = {}, {}

    def clean(self, t, pad=((0, 0), (0, 0)), value=0.0):
        return self.cleans[(t, pad, value)]

    def whole(self, t):
        """Tensor t for every copy: its window pasted into the clean tensor."""
        if t in self.wholes:
            return self.wholes[t]
        clean = self.clean(t)
        start = self.starts[t] * 0
        return read_region(clean, (0, 0), start, clean.shape[1:3], self.windows[t],
                           self.starts[t])

    def region(self, t, start, length, pad=((0, 0), (0, 0)), value=0.0):
        """Tensor t over the region [start, start + length) of every copy."""
        before = (pad[0][0], pad[1][0])
        return read_region(self.clean(t, pad, value), before, start, length, self.windows[t],
                           self.starts[t])

    def step(self, step):
        out = step.call.outputs[0]
        if step.kind == "full":
            values = {t: self.whole(t) for t in step.inputs}
            self.wholes.update(zip(step.call.outputs, step.call.apply(values)))
        elif step.kind == "window":
            self.windows[out] = self.sliding(step)
        else:
            values = {t: self.windows[t] if self.plan.same_window(t, out) else
                      self.region(t, self.starts[out], self.plan.lengths[out])
                      for t in step.inputs}
            self.windows[out] = step.call.apply(values)[0]

    def sliding(self, step):
        """The output window of a sliding layer, from the input region it reads."""
        import tensorflow as tf

        t, g = step.inputs[0], step.geometry
        length = self.plan.region(step)
        start = self.starts[step.call.outputs[0]] * tf.constant(g.stride) - tf.constant(g.left)
        x = self.region(t, start, length, g.pad, pad_value(step.call.layer))
        return _sliding(step.call.layer, x, self.valid(step, start, length))

    def valid(self, step, start, length):
        """For average pooling over padding: 1 on the region's real locations, 0 on padding."""
        import tensorflow as tf

        if sliding_window(step.call.layer).op != "average_pool" or \
                not any(sum(p) for p in step.geometry.pad):
            return None
        n = self.plan.fields[step.inputs[0]].spatial
        rows, cols = region_indices(start, length)
        return tf.cast(inside(rows, cols, (0, n[0]), (0, n[1])), tf.float32)

    def target(self):
        """The target layer's output for every copy, whole."""
        t = self.plan.target
        return self.whole(t) if t in self.windows else self.wholes[t]


def occluded_window(plan: Plan, x, fill, bounds, start):
    """The input's window of every copy: image x (1, H, W, C) over the window at ``start``
    (B, 2), painted with ``fill`` inside each copy's patch ``bounds`` (4, B)."""
    import tensorflow as tf

    length = plan.lengths[plan.source]
    region = read_region(x, (0, 0), start, length)
    rows, cols = region_indices(start, length)
    patch = inside(rows, cols, (bounds[0][:, None], bounds[1][:, None]),
                   (bounds[2][:, None], bounds[3][:, None]))
    return tf.where(patch, tf.cast(fill, region.dtype), region)


# --------------------------------------------------------------------------- compiled steps


def compiled(model, plan: Plan, pool: str, at: bool):
    """Compiled (clean, step) for ``plan`` and a target pooled by ``pool`` (or read at given
    locations when ``at``):

    - ``clean(image, channel[, locations])`` -> (padded clean tensors, baseline): once per image;
    - ``step(image, fill, bounds (4, B), offsets (T, B, 2), cleans, channel[, locations])`` ->
      the target on each of the B occluded copies (B,).
    """
    import tensorflow as tf

    from .. import features

    def build():
        dtype = _graph.model_input(model).dtype
        n_spatial = len(plan.fields[plan.target].spatial)
        head = [tf.TensorSpec(plan.image_shape, tf.float32)]
        tail = [tf.TensorSpec((), tf.int32)]
        tail += [tf.TensorSpec((None, n_spatial), tf.int64)] if at else []

        @tf.function(input_signature=head + tail, autograph=False)
        def clean(image, channel, locations=None):
            values = run_clean(plan, tf.cast(image[None], dtype))
            baseline = features.read(values[plan.target], channel, pool, locations)[0]
            return padded_cleans(plan, values), tf.cast(baseline, tf.float32)

        outputs = clean.get_concrete_function().structured_outputs[0]
        specs = [tf.TensorSpec(c.shape, c.dtype) for c in outputs]
        middle = [tf.TensorSpec(plan.image_shape[-1:], tf.float32),
                  tf.TensorSpec((4, None), tf.int32),
                  tf.TensorSpec((len(plan.lengths), None, 2), tf.int32), specs]

        @tf.function(input_signature=head + middle + tail, autograph=False)
        def step(image, fill, bounds, offsets, cleans, channel, locations=None):
            run = _Run(plan, cleans, offsets)
            run.windows[plan.source] = occluded_window(plan, tf.cast(image[None], dtype), fill,
                                                       bounds, offsets[0])
            for one in plan.steps:
                run.step(one)
            value = features.read(run.target(), channel, pool, locations)[0]
            return tf.cast(value, tf.float32)

        return clean, step

    key = ("incremental steps", id(plan), pool, at)
    return _graph.memo(model, key, build)


def auto_batch_size(plan: Plan) -> int:
    """"auto" for incremental occlusion: the copies whose windows and whole tensors fit in
    ``MEMORY_PER_CALL`` bytes (float32), between 1 and ``MAX_BATCH``."""
    windows = sum(math.prod(n) * plan.fields[t].shape[-1] for t, n in plan.lengths.items())
    wholes = sum(math.prod(plan.fields[s.call.outputs[0]].shape) for s in plan.steps
                 if s.kind == "full" and None not in plan.fields[s.call.outputs[0]].shape)
    per_copy = 2 * windows + wholes
    return int(min(_graph.MAX_BATCH, max(1, _graph.MEMORY_PER_CALL // (4 * per_copy))))


def step_batch_size(plan: Plan, value, copies: int) -> int:
    """Copies per compiled step for ``copies`` copies of an image: ``value`` (an int), or for
    "auto" at most ``auto_batch_size(plan)``, spread evenly over as few steps as that allows
    (no small last step paying a whole step's fixed cost).

    >>> step_batch_size(plan, "auto", 3136)      # VGG16, patch 16: auto 174, 19 steps of 166
    166
    """
    if value != "auto":
        return value
    steps = max(1, math.ceil(copies / auto_batch_size(plan)))
    return max(1, math.ceil(copies / steps))


def occluded_values(model, plan: Plan, feature, images, fills, bounds, at, batch_size):
    """The target on every occluded copy of every image, incrementally: (values (N, M),
    baselines (N,)). bounds (4, M): the M patches; fills (N, C); at: (N, n_spatial) locations
    or None; batch_size: copies per compiled call, or "auto" (``step_batch_size``)."""
    clean, step = compiled(model, plan, feature.pool, at is not None)
    batch_size = step_batch_size(plan, batch_size, np.shape(bounds)[1])
    values, baselines = [], []
    for i, image in enumerate(images):
        where = () if at is None else (at[i:i + 1],)
        cleans, baseline = clean(image, feature.channel, *where)
        baselines.append(float(baseline[0]))

        def run(b, plan=plan, image=image, i=i, cleans=cleans):
            b = b.T
            more = () if at is None else (np.repeat(at[i:i + 1], b.shape[1], axis=0),)
            return [step(image, fills[i], b, plan.offsets(b), cleans, feature.channel, *more)]

        values.append(_graph.run_batched(run, batch_size, np.asarray(bounds).T)[0])
    return np.stack(values), np.asarray(baselines, np.float32)

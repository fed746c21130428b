"""Which integer tensors the package's own code makes TensorFlow compute, for the test that keeps
oneDNN's "oneDNN supports DT_INT64 (or DT_INT32) only on platforms with AVX-512" line out of
users' terminals.

TensorFlow's oneDNN layout pass checks the type of the ops it may rewrite (transposes, element-
wise arithmetic, reshapes, concatenations, ...) and logs that line as an ERROR, which
TF_CPP_MIN_LOG_LEVEL=2 lets through. On this project's CPU an integer Transpose (int32 or int64)
prints it; the issue saw it for other int64 ops on a CPU without AVX-512. So every op is recorded
as TensorFlow builds or runs it (an op callback), with the line of ``cnn_helper`` that asked for
it, and listed when it is an integer Transpose or an int64 op of those oneDNN rewrites.
"""
import collections
import contextlib
import os
import traceback

import tensorflow as tf
from tensorflow.python.framework import op_callbacks  # internal contract: TF's op hook

ONEDNN_OPS = {"Add", "AddN", "AddV2", "BatchMatMulV2", "BiasAdd", "ConcatV2", "Einsum",
              "Identity", "MatMul", "Maximum", "Minimum", "Mul", "Pad", "Reshape", "Slice",
              "Split", "SquaredDifference", "Sub", "Transpose"}
"""The ops of TensorFlow's oneDNN layout pass that have integer kernels (so an int64 one is
checked against the CPU)."""
LIBRARY = (os.sep + "tensorflow" + os.sep, os.sep + "keras" + os.sep)
NOT_OURS = tuple(os.path.join("keras", "src", part) for part in
                 ("layers", "models", "random", "trainers", "optimizers", "saving"))
"""Keras code whose int64 ops are Keras' own (a layer's call, seed generators)."""


def _asked_by() -> str | None:
    """``file:line`` of the package code that made the op being built, None when it was not the
    package's (a Keras layer's own call, the test itself). A function compiled with autograph
    runs from a generated file: it counts as the package's (only the package's steps are)."""
    frames = traceback.extract_stack()[:-3]
    for i in range(len(frames) - 1, -1, -1):
        name = frames[i].filename
        if "site-packages" in name and any(part in name for part in LIBRARY):
            continue
        if any(part in frame.filename for frame in frames[i + 1:] for part in NOT_OURS):
            return None
        if "__autograph_generated" in name:
            return f"compiled {frames[i].name}"
        if os.sep + "cnn_helper" + os.sep in name:
            return f"{name.rsplit(os.sep + 'cnn_helper' + os.sep, 1)[-1]}:{frames[i].lineno}"
        return None
    return None


@contextlib.contextmanager
def int64_ops_recorded():
    """A Counter of (op type, where the package asked for it) of the integer transposes and int64
    oneDNN ops built or run in the block."""
    seen = collections.Counter()

    def record(op_type, inputs, attrs, outputs, op_name=None, graph=None):
        op_type = op_type.decode() if isinstance(op_type, bytes) else op_type
        dtypes = {o.dtype for o in outputs or () if o is not None}
        if (op_type in ONEDNN_OPS and tf.int64 in dtypes) or \
                (op_type == "Transpose" and dtypes & {tf.int32, tf.int64}):
            where = _asked_by()
            if where:
                seen[(op_type, where)] += 1

    op_callbacks.add_op_callback(record)
    try:
        yield seen
    finally:
        op_callbacks.remove_op_callback(record)

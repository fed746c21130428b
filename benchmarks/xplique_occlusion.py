"""xplique's Occlusion on a saved Keras model, for bench_incremental_occlusion.py (run with an
interpreter that has xplique, whose TensorFlow is <= 2.20): prints the seconds per occluded copy.

    python xplique_occlusion.py MODEL.keras X.npy PATCH STRIDE BATCH
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from xplique.attributions import Occlusion  # noqa: E402


def main(path, images, patch, stride, batch):
    model = keras.models.load_model(path)
    x = np.load(images)
    y = np.eye(model.output_shape[-1], dtype=np.float32)[[3] * len(x)]
    method = Occlusion(model, batch_size=int(batch), patch_size=int(patch),
                       patch_stride=int(stride), occlusion_value=1.0)
    n = len(Occlusion._get_masks(x.shape[1:], (int(patch),) * 2, (int(stride),) * 2))
    method.explain(x, y)                                               # warm-up (tracing)
    start = time.perf_counter()
    method.explain(x, y)
    seconds = time.perf_counter() - start
    print(json.dumps({"copies": n, "seconds": seconds, "seconds_per_copy": seconds / n}))


if __name__ == "__main__":
    main(*sys.argv[1:])

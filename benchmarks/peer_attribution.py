"""Our new attribution methods against a peer's on the course CNN: Grad-CAM++, VarGrad,
SquareGrad and RISE against xplique's GradCAMPP, VarGrad, SquareGrad and Rise; Score-CAM,
LayerCAM and Grad-CAM++ against tf-keras-vis where it runs. Prints, per method, the Pearson
correlation of our maps with the peer's (mean and min over the images) and the largest absolute
difference relative to the peer's largest value. Results: /work/notes/results_12a.md.

    .venv/bin/python benchmarks/peer_attribution.py [--peer-python /work/xvenv/bin/python]

The peers run in a child process with an interpreter that has them (xplique needs TensorFlow
<= 2.20), on the model saved as .keras: ``python peer_attribution.py --peer MODEL X OUT``.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

N_IMAGES, CLASS, N_SAMPLES, N_MASKS, NOISE = 8, 8, 200, 4000, 0.15


def peer_maps(model_path, x_path, out):
    """In the peer interpreter: every peer map we can compute, saved as OUT/<name>.npy."""
    import keras
    import tensorflow as tf

    model = keras.models.load_model(model_path)
    x = np.load(x_path)
    y = np.eye(10, dtype=np.float32)[[CLASS] * len(x)]
    from xplique.attributions import GradCAMPP, Rise, SquareGrad, VarGrad

    found = {
        "xplique GradCAMPP": GradCAMPP(model, conv_layer="conv3").explain(x, y),
        "xplique VarGrad": VarGrad(model, nb_samples=N_SAMPLES, noise=NOISE).explain(x, y),
        "xplique SquareGrad": SquareGrad(model, nb_samples=N_SAMPLES, noise=NOISE).explain(x, y),
        "xplique Rise": Rise(model, nb_samples=N_MASKS, grid_size=7,
                             preservation_probability=0.5, mask_value=0.0).explain(x, y),
    }
    errors = {}
    try:
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore([CLASS] * len(x))
        for name, cls in (("tf-keras-vis Scorecam", Scorecam), ("tf-keras-vis Layercam", Layercam),
                          ("tf-keras-vis GradcamPlusPlus", GradcamPlusPlus)):
            try:
                found[name] = cls(model, clone=True)(score, x, penultimate_layer="conv3",
                                                     normalize_cam=False)
            except Exception as e:                 # record why a peer does not run
                errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        found["tf-keras-vis Layercam at conv3"] = Layercam(model, clone=True)(
            score, x, penultimate_layer="conv3", normalize_cam=False, expand_cam=False)
    except Exception as e:
        errors["tf-keras-vis"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    for name, m in found.items():
        np.save(Path(out) / f"{name}.npy", np.asarray(tf.convert_to_tensor(m)))
    (Path(out) / "errors.json").write_text(json.dumps(errors))


def our_maps(model, x):
    """Our maps, and Grad-CAM++ in xplique's form computed from our gradient at conv3."""
    import tensorflow as tf

    from cnn_helper import occlusion, saliency

    ours = {
        "grad_cam_plus_plus": saliency.grad_cam_plus_plus(model, x, CLASS, layer="conv3"),
        "layer_cam": saliency.layer_cam(model, x, CLASS, layer="conv3"),
        "score_cam": saliency.score_cam(model, x, CLASS, layer="conv3"),
        "vargrad": saliency.vargrad(model, x, CLASS, n_samples=N_SAMPLES, noise=NOISE),
        "squaregrad": saliency.squaregrad(model, x, CLASS, n_samples=N_SAMPLES, noise=NOISE),
        "rise": occlusion.rise(model, x, CLASS, n_masks=N_MASKS),
    }
    again = dict(n_samples=N_SAMPLES, noise=NOISE, seed=1)      # other copies: sampling spread
    ours["vargrad, seed 1"] = saliency.vargrad(model, x, CLASS, **again)
    ours["squaregrad, seed 1"] = saliency.squaregrad(model, x, CLASS, **again)
    ours["rise, seed 1"] = occlusion.rise(model, x, CLASS, n_masks=N_MASKS, seed=1)
    request = saliency._request(model, x, CLASS, "auto", "signed")  # internal: the gradient step
    A, g = saliency._gradients(model, request, request.x, wrt="conv3")
    denominator = 2 * g ** 2 + g ** 3 * A.mean(axis=(1, 2), keepdims=True)   # xplique: mean A
    a = g ** 2 / np.where(denominator == 0, 1e-4, denominator)
    w = (a * np.maximum(g, 0)).mean(axis=(1, 2), keepdims=True)               # and mean over idx
    cam = np.maximum((w * A).sum(axis=-1), 0)[..., None]
    ours["grad_cam_plus_plus in xplique's form"] = tf.image.resize(cam, x.shape[1:3],
                                                                    "bicubic").numpy()
    ours["layer_cam at conv3"] = np.maximum((np.maximum(g, 0) * A).sum(axis=-1), 0)
    return ours


SELF = [("vargrad", "vargrad, seed 1"), ("squaregrad", "squaregrad, seed 1"),
        ("rise", "rise, seed 1")]


def compare(a, b) -> dict:
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    r = [np.corrcoef(u, v)[0, 1] for u, v in zip(a, b)]
    return {"corr_mean": float(np.mean(r)), "corr_min": float(np.min(r)),
            "max_abs_diff_rel": float(np.abs(a - b).max() / np.abs(b).max())}


PAIRS = [("grad_cam_plus_plus", "xplique GradCAMPP"),
         ("grad_cam_plus_plus in xplique's form", "xplique GradCAMPP"),
         ("vargrad", "xplique VarGrad"), ("squaregrad", "xplique SquareGrad"),
         ("rise", "xplique Rise"), ("score_cam", "tf-keras-vis Scorecam"),
         ("layer_cam", "tf-keras-vis Layercam"),
         ("layer_cam at conv3", "tf-keras-vis Layercam at conv3"),
         ("grad_cam_plus_plus", "tf-keras-vis GradcamPlusPlus")]


def main(peer_python):
    from cnn_helper import data, models

    model = models.load("cnn", "shipped")
    (_, _), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    x = np.ascontiguousarray(x_test[y_test == CLASS][:N_IMAGES])
    ours = our_maps(model, x)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "cnn.keras")
        np.save(Path(tmp) / "x.npy", x)
        subprocess.run([peer_python, __file__, "--peer", str(Path(tmp) / "cnn.keras"),
                        str(Path(tmp) / "x.npy"), tmp], check=True)
        peers = {p.stem: np.load(p) for p in Path(tmp).glob("*.npy") if p.stem != "x"}
        errors = json.loads((Path(tmp) / "errors.json").read_text())
    for mine, theirs in PAIRS:
        if theirs in peers:
            print(json.dumps({"ours": mine, "peer": theirs, **compare(ours[mine], peers[theirs])}))
    for mine, again in SELF:
        print(json.dumps({"ours": mine, "ours again": again, **compare(ours[mine], ours[again])}))
    print(json.dumps({"peer errors": errors, "x range": [float(x.min()), float(x.max())]}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peer"]:
        peer_maps(*sys.argv[2:5])
    else:
        main(sys.argv[sys.argv.index("--peer-python") + 1] if "--peer-python" in sys.argv
             else "/work/xvenv/bin/python")

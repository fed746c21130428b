"""The new registry methods (kernel_shap, lime, guided_grad_cam) run from every place that takes
a method by name: the command line, the sanity checks, faithfulness.measure and
distributed.explain (in tests/test_distributed.py, on its local Ray)."""
import numpy as np

from cnn_helper import black_box, faithfulness, guided_grad_cam, methods, sanity_checks
from cnn_helper.__main__ import main

NEW = ("kernel_shap", "lime", "guided_grad_cam")
SMALL = {"kernel_shap": {"n_segments": (2, 4), "n_samples": 64},
         "lime": {"n_segments": (2, 4), "n_samples": 64}, "guided_grad_cam": {}}


def test_they_are_in_the_registry():
    assert methods.get("kernel_shap") is black_box.kernel_shap
    assert methods.get("lime") is black_box.lime
    assert methods.get("guided_grad_cam") is guided_grad_cam.guided_grad_cam


def test_the_command_line_explains_with_them(bundled, tmp_path, capsys):
    from PIL import Image

    (_, _), (x_test, _) = bundled
    Image.fromarray((x_test[0, ..., 0] * 255).astype(np.uint8)).save(tmp_path / "two.png")
    assert main(["explain", "course-cnn", str(tmp_path / "two.png"), "--methods", ",".join(NEW),
                 "--out", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out
    for title in ("KernelSHAP of", "LIME of", "Guided Grad-CAM of"):     # each map's line
        assert title in said, said
    assert (tmp_path / "out" / "index.html").exists()


def test_sanity_checks_and_faithfulness_take_them_by_name(shipped_cnn, bundled):
    (_, _), (x_test, y_test) = bundled
    eights = x_test[y_test == 8][:2]
    for name in NEW:
        r = sanity_checks.model_randomization(shipped_cnn, eights, 8, name, options=SMALL[name],
                                              layers=["logits"])
        assert r.maps.shape[:2] == (1, 2)
    results = faithfulness.measure(shipped_cnn, eights, 8, {n: (n, SMALL[n]) for n in NEW},
                                   steps=4, n_subsets=8, grid=3)
    assert set(results) == set(NEW)

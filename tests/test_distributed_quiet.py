"""A local Ray scan and explanation show the package's own progress bars and nothing of Ray's:
no INFO or WARNING lines of Ray or Ray Data, no Ray Data progress bars, no "max_restarts" line per
worker, no TensorFlow start-up lines from the workers; an error in a worker is still reported.
The run is a fresh Python process on a pseudo-terminal, so that everything written to its file
descriptors 1 and 2 (by Ray's C++ core, its log monitor, the workers) is seen as a user sees it."""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

pytest.importorskip("ray")

CHILD = r'''
import numpy as np, ray
from cnn_helper import data, distributed, models

for attempt in range(3):           # on a loaded machine the raylet may miss its 15 s start-up
    try:
        distributed.connect()      # the package starts the local Ray
        break
    except Exception:
        ray.shutdown()
        if attempt == 2:
            raise
model = models.load("cnn", "shipped")
x = np.asarray(data.load_mnist("bundled", verbose=False)[1][0][:64])
ds = ray.data.from_items([{"image": x[i], "id": i} for i in range(len(x))],
                         override_num_blocks=2)
mine = ray.data.DataContext.get_current()
assert mine.enable_progress_bars and ds.context.enable_progress_bars
distributed.scan(model, ds, "conv1", count=3, n_workers=1)              # a Ray dataset
distributed.explain(model, ds, "gradient", OUT + "/maps", 3, n_workers=1)
print("### bars kept:", mine.enable_progress_bars, ds.context.enable_progress_bars, flush=True)

def failing(model, x, target):
    if len(x) > 1:                 # the one-image trial on the driver passes
        raise RuntimeError("a deliberate failure in a worker")
    return np.zeros((len(x), 1))

distributed.explain(model, ds, failing, OUT + "/failed", 3, n_workers=1)
'''

RAY_LINES = [
    re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(DEBUG|INFO|WARNING) \S+:\d+ --"),  # Python
    re.compile(r"\[\d{4}-\d\d-\d\d [\d:,]+ [IW] \d+ \d+\]"),                            # C++
    re.compile(r"max_restarts|Unhandled error|\(raylet\)|retries remaining"),
    re.compile(r"Running Dataset|execution finished|dataset_\w+|row/s|Queued blocks"),  # Ray Data
    re.compile(r"oneDNN|absl::InitializeLog|cpu_feature_guard|rebuild TensorFlow"),    # workers
]


def on_a_terminal(code: str, tmp_path) -> tuple:
    """(exit status, everything the process wrote) of ``python -c code`` run on a pseudo-terminal
    of 120 columns (the package's bars are drawn only where someone watches)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "OUT": str(tmp_path)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)                # as a user's shell has it
    child = subprocess.Popen([sys.executable, "-c", f"import os; OUT = os.environ['OUT']\n{code}"],
                             stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:                                  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return child.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_a_local_ray_run_shows_the_package_bars_alone_and_errors(tmp_path):
    status, output = on_a_terminal(CHILD, tmp_path)
    screen = output.replace("\r", "\n")
    foreign = [line for line in screen.splitlines()
               if any(pattern.search(line) for pattern in RAY_LINES)]
    assert foreign == [], "\n".join(foreign)
    assert "scan conv1" in screen and "explain: gradient" in screen     # the package's bars
    assert "### bars kept: True True" in screen      # the user's DataContext settings are back
    assert status == 1                               # the error is raised, with its message
    assert "RuntimeError: a deliberate failure in a worker" in screen

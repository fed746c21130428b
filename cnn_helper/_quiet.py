"""A quiet terminal: TensorFlow's native start-up lines are dropped, real messages are kept.

While ``import tensorflow`` runs, TensorFlow 2.21's native libraries write notes straight to file
descriptor 2, below Python: absl's "WARNING: All log messages before absl::InitializeLog() is
called are written to STDERR", oneDNN's "oneDNN custom operations are on..." and the CPU guard's
"This TensorFlow binary is optimized ... To enable the following instructions: ...". On CPUs where
oneDNN is on they come twice (two native libraries, ``libtensorflow_framework`` and the Python
wrapper, each log their own before absl is initialised), and TF_CPP_MIN_LOG_LEVEL does not stop
them: that filter starts working only after absl's log is initialised.

So the first ``import tensorflow`` of the process (whoever asks for it: Keras, the package, the
user) runs with fd 2 pointed at a temporary file (``quiet_tensorflow_import``, installed as an
import hook by ``install``); afterwards every line of that file that is not one of these start-up
notes is written to the real fd 2. Python warnings and tracebacks raised meanwhile therefore still
reach the user, only a little later. After the import, TF_CPP_MIN_LOG_LEVEL=2 (set unless the user
set it) keeps TensorFlow's C++ INFO and WARNING lines out and lets its ERRORs through.

``CNN_HELPER_VERBOSE=1`` (or ``python -m cnn_helper --verbose``) turns all of this off.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

VERBOSE_VARIABLE = "CNN_HELPER_VERBOSE"
START_UP_LINES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|^I\d{4} [\d:.]+\s+\d+ (port|cpu_feature_guard)\.cc:\d+\]"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate")
"""The start-up notes dropped: absl's banner, the INFO lines of oneDNN's ``port.cc`` and of the
CPU guard, and the CPU guard's second line. Anything else (an E or W line, a Python warning, a
traceback) is kept."""
_LEVEL_SET_BY_US = "TF_CPP_MIN_LOG_LEVEL" not in os.environ     # when this module was imported


def verbose() -> bool:
    """True when the user asked to see TensorFlow's start-up lines (``CNN_HELPER_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def kept_lines(text: str) -> str:
    """``text`` without the start-up notes (``START_UP_LINES``), other lines as they were.

    >>> kept_lines("WARNING: All log messages before absl::InitializeLog() is called are ...\\n"
    ...            "UserWarning: a real one\\n")
    'UserWarning: a real one\\n'
    """
    return "".join(line for line in text.splitlines(keepends=True)
                   if not START_UP_LINES.search(line))


@contextlib.contextmanager
def native_stderr_filtered():
    """Run the block with fd 2 (and ``sys.stderr``) captured in a temporary file; afterwards
    write what was captured, less the start-up notes, to the real fd 2."""
    if sys.stderr is not None:
        sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = kept_lines(captured.read().decode("utf-8", "replace"))
            if rest:
                os.write(2, rest.encode("utf-8"))


class _QuietLoader(importlib.abc.Loader):
    """The loader of the ``tensorflow`` package, run inside ``native_stderr_filtered``."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_filtered():
            self.loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, the first time anything imports it, and hands back its usual
    spec with the loader wrapped in ``_QuietLoader``; then it removes itself."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow" or verbose():
            return None
        uninstall()
        spec = importlib.util.find_spec("tensorflow")
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install():
    """Make the process's first ``import tensorflow`` quiet (nothing to do when TensorFlow is
    already imported or the user asked for its lines)."""
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def uninstall():
    """Remove the import hook (TensorFlow's next first import prints what it prints)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]


def ask_for_verbose():
    """What ``--verbose`` does: set ``CNN_HELPER_VERBOSE=1``, remove the hook and, if the package
    set TF_CPP_MIN_LOG_LEVEL, unset it (call before TensorFlow is imported)."""
    os.environ[VERBOSE_VARIABLE] = "1"
    uninstall()
    if _LEVEL_SET_BY_US and os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "2":
        del os.environ["TF_CPP_MIN_LOG_LEVEL"]



# --------------------------------------------------------------------------- progress bars


def watched() -> bool:
    """Whether someone watches the progress: a Jupyter kernel (a bar widget), or standard error
    on a terminal. A log file or a pipe is not watched: a bar there is only noise."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if type(shell).__name__ == "ZMQInteractiveShell":                   # a Jupyter kernel
        return True
    stream = sys.stderr
    return bool(stream is not None and getattr(stream, "isatty", lambda: False)())


def progress_bar(progress: bool = True, **options):
    """The package's progress bar (``tqdm.auto``, ``options`` such as total, unit, desc): shown
    when ``progress`` is True and someone watches (``watched``), never drawn into a log file.

    >>> with progress_bar(True, total=10, unit="img", desc="scan") as bar:
    ...     bar.update(10)
    """
    from tqdm.auto import tqdm

    return tqdm(disable=not (progress and watched()), **options)

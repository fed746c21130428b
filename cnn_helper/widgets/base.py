"""What every explorer shares: the ``Explorer`` base class, a small LRU cache, PNG drawing and the
little widgets the explorers are built of.

An explorer never computes: it calls the package's functions and ``cnn_helper.plot``, caches
what they return, and shows each figure as PNG bytes in an ``ipywidgets.Image``.
"""
from __future__ import annotations

import contextlib
import html
import io
from collections import OrderedDict

import ipywidgets as widgets
import numpy as np

from .. import _graph

DPI = 80            # resolution of the PNGs shown in the widgets: sharp enough, quick to draw
CACHE_SIZE = 64     # examples (activations) or occlusion maps kept per explorer


def figure_png(fig, dpi: int = DPI, compress_level: int = 6) -> bytes:
    """The PNG bytes of a matplotlib figure (what an explorer's ``ipywidgets.Image`` shows).
    ``compress_level`` 1 (zlib's fastest) suits a view redrawn after every stroke."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": compress_level})
    return buf.getvalue()


class LRU(OrderedDict):
    """A small least-recently-used cache: ``get(key, compute)`` returns the kept value, or
    computes and keeps it, forgetting the least recently used one beyond ``size`` entries."""

    def __init__(self, size: int = CACHE_SIZE):
        super().__init__()
        self.size = size

    def get(self, key, compute):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = compute()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


def image_widget(css_class: str):
    """An ``ipywidgets.Image`` for PNGs, shown at the PNG's own size (not stretched to the box),
    shrunk only to fit a narrow window."""
    img = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto",
                                                            align_self="flex-start"))
    img.add_class(css_class)
    return img


def panels(*children):
    """Panels side by side, wrapping below each other in a narrow window."""
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap"))


def header(text: str):
    return widgets.HTML(f"<b>{html.escape(text)}</b>")


def tag(controls: dict):
    """Give each control the css class ``cnnh-<name>`` (``{name: control}``), for browser tests."""
    for name, control in controls.items():
        control.add_class(f"cnnh-{name}")


class Explorer:
    """What the explorers share: ``widget``, ``state``, the ``message`` area, display and updates.

    A subclass builds its controls and images, ``_observe``s the controls and draws once. An
    update runs inside ``_guard``: a ValueError/TypeError (the package's answer to a bad value)
    is shown in ``message`` and stored in ``state["error"]``; the images keep the last good view.
    Drawn PNGs are cached by what they show, so going back to a view costs no drawing.
    """

    css_class = "cnnh-explorer"

    def __init__(self):
        self.state = {"error": None}
        self.message = widgets.HTML(layout=widgets.Layout(min_height="1.5em"))
        self.message.add_class("cnnh-message")
        self._quiet_depth = 0
        self._pngs = LRU()

    def _use_data(self, model, x, y):
        """Keep ``model``, the images ``x`` (checked against its input) and their labels ``y``."""
        self.model = model
        self.x, _ = _graph.check_images(model, x)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"y has {len(self.y)} labels but x has {len(self.x)} examples")

    # -------------------------------------------------------------- updates

    @contextlib.contextmanager
    def _quiet(self):
        """Change several controls without an update per change."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def _observe(self, handlers: dict):
        """``{control: handler}``: call handler() when the control's value changes."""
        def make(handler):
            def on_change(change):
                if not self._quiet_depth:
                    self._guard(handler)
            return on_change
        for control, handler in handlers.items():
            control.observe(make(handler), names="value")

    def _guard(self, update):
        """Run ``update``; show a ValueError/TypeError in ``message``. True when it succeeded."""
        try:
            update()
        except (ValueError, TypeError) as e:
            self.state["error"] = str(e)
            self.message.value = f'<span style="color:#b00020">&#9888; {html.escape(str(e))}</span>'
            return False
        self.state["error"] = None
        self.message.value = ""
        return True

    def _show(self, image, name: str, key, draw):
        """Show in ``image`` the PNG of ``draw()`` (a plot function's (fig, axes)); ``key`` says
        what it shows, so the same view is drawn once. The bytes are kept in ``state[name]``."""
        png = self._pngs.get((name, key), lambda: figure_png(draw()[0]))
        self.state[name] = png
        image.value = png          # the same bytes as shown: no change, nothing sent

    # -------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = repr(self)     # short and stable (no widget ids, no image bytes)
        return bundle

    def show(self):
        """Display the explorer (the same as ending a notebook cell with it)."""
        from IPython.display import display
        display(self)

    def close(self):
        """Close the explorer's widgets (they disappear from the notebook; the kernel side is
        freed)."""
        def close(w):
            for child in getattr(w, "children", ()):
                close(child)
            w.close()
        close(self.widget)

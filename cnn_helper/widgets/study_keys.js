// The keyboard of cnn_helper.widgets.StudyExplorer (an anywidget ES module; no CDN, no build).
//
// It shows a one-line hint and listens for key presses anywhere inside the explorer (the box with
// the css class `cnnh-study-explorer`, found once the widget is in the page): a key listed in
// `accepted` goes to Python as `key`, with `presses` counted up (the same key twice is two
// answers), and stops there, so JupyterLab's own shortcuts (1 makes a heading, arrows move
// between cells) do not also act on it. The hint takes the focus when Python counts
// `focus_requests` up.

function render({ model, el }) {
  const hint = document.createElement("div");
  hint.className = "cnnh-study-keys";
  hint.tabIndex = 0;
  hint.textContent = model.get("hint");
  el.appendChild(hint);

  function onKey(event) {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    if (!model.get("accepted").includes(event.key) || event.repeat) return;
    event.preventDefault();
    event.stopPropagation();
    model.set("key", event.key);
    model.set("presses", model.get("presses") + 1);
    model.save_changes();
  }

  let box = null;
  function attach() {
    if (!el.isConnected) {
      requestAnimationFrame(attach);
      return;
    }
    box = el.closest(".cnnh-study-explorer") || el;
    box.setAttribute("data-lm-suppress-shortcuts", "true");
    box.addEventListener("keydown", onKey);
    hint.focus({ preventScroll: true });
  }
  requestAnimationFrame(attach);
  model.on("change:hint", () => { hint.textContent = model.get("hint"); });
  model.on("change:focus_requests", () => hint.focus({ preventScroll: true }));
  return () => { if (box) box.removeEventListener("keydown", onKey); };
}

export default { render };

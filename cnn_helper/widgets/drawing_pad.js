// The drawing pad of cnn_helper.widgets.DrawingPad (an anywidget ES module; no CDN, no build).
//
// The student draws on a <canvas> with the mouse, a pen or a finger (pointer events). The ink is
// the canvas's alpha channel: the pen paints opaque black, the eraser removes paint. When a stroke
// ends, and no new one starts within `debounce_ms`, the alpha channel goes to Python as `pixels`
// (side x side bytes, row by row: 0 paper, 255 full ink). Python puts an image on the pad by
// setting `image` (image_side x image_side bytes, drawn enlarged to the pad) and counting `loads`
// up; an empty `image` clears the pad.

function render({ model, el }) {
  const side = model.get("side");
  const canvas = document.createElement("canvas");
  canvas.width = side;
  canvas.height = side;
  canvas.className = "cnnh-pad-canvas";
  el.classList.add("cnnh-pad");
  el.appendChild(canvas);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let drawing = false;
  let last = null;
  let timer = null;

  function send() {
    const rgba = ctx.getImageData(0, 0, side, side).data;
    const alpha = new Uint8Array(side * side);
    for (let i = 0; i < alpha.length; i++) alpha[i] = rgba[4 * i + 3];
    model.set("pixels", new DataView(alpha.buffer));
    model.set("strokes", model.get("strokes") + 1);
    model.save_changes();
  }

  function where(event) {           // the pointer in canvas pixels, whatever the CSS size
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * side / box.width,
            (event.clientY - box.top) * side / box.height];
  }

  function line(from, to) {
    const erasing = model.get("tool") === "eraser";
    ctx.globalCompositeOperation = erasing ? "destination-out" : "source-over";
    ctx.strokeStyle = "black";
    ctx.lineWidth = model.get("pen_width");
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  }

  function start(event) {
    drawing = true;
    clearTimeout(timer);
    canvas.setPointerCapture(event.pointerId);
    last = where(event);
    line(last, last);               // a click is a dot
  }

  function move(event) {
    if (!drawing) return;
    const here = where(event);
    line(last, here);
    last = here;
  }

  function end() {
    if (!drawing) return;
    drawing = false;
    clearTimeout(timer);
    timer = setTimeout(send, model.get("debounce_ms"));
  }

  function showImage() {            // what Python put on the pad (or nothing: a clear pad)
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, side, side);
    const view = model.get("image");
    const n = model.get("image_side");
    if (!view || n === 0 || view.byteLength !== n * n) return;
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const small = document.createElement("canvas");
    small.width = n;
    small.height = n;
    const smallCtx = small.getContext("2d");
    const data = smallCtx.createImageData(n, n);
    for (let i = 0; i < n * n; i++) data.data[4 * i + 3] = bytes[i];   // black ink, alpha
    smallCtx.putImageData(data, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, side, side);
  }

  canvas.addEventListener("pointerdown", start);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  model.on("change:loads", showImage);
  showImage();
  return () => {
    clearTimeout(timer);
    model.off("change:loads", showImage);
  };
}

export default { render };

/* The detector in the reader's browser (the edge chapter): VampireNet, exported to ONNX, run by
 * ONNX Runtime Web on WebAssembly. Nothing leaves the page: the portrait, the model and the
 * runtime are all files of the book.
 *
 * The pixels must become exactly the numbers the model was trained on, so the preprocessing below
 * reproduces vampire_detector/images.py (and, for uploads, the service's centred square crop over
 * a black background): RGB, (x / 255 - mean) / std per channel in float32, channels first. The
 * mean, std and size come from the manifest that web/build_demo.py writes from the library itself.
 */
(function () {
  "use strict";
  const root = document.getElementById("vampire-demo");
  if (!root) return;
  const base = root.dataset.base || "";
  const MAX_UPLOAD_BYTES = 20 * 1000 * 1000;
  const TIMED_RUNS = 50;  // timed together: browsers round performance.now() to 0.1 ms
  let manifest = null;
  let session = null;

  root.innerHTML = `
    <p class="vd-status">Loading the detector…</p>
    <div class="vd-main">
      <img class="vd-image" alt="the portrait being judged" hidden>
      <div><div class="vd-verdict"></div><div class="vd-probability"></div>
           <div class="vd-latency"></div></div>
    </div>
    <p><label>Judge your own image: <input type="file" accept="image/*" class="vd-upload"></label></p>
    <p>Or pick one of the villagers' portraits (caption: how it was painted, what the detector says):</p>
    <div class="vd-gallery"></div>`;
  const part = (name) => root.querySelector(".vd-" + name);

  function say(text, isError) {
    part("status").textContent = text;
    part("status").classList.toggle("vd-error", Boolean(isError));
  }

  /* The centred square of the image, scaled to size x size, drawn over black: RGBA bytes. */
  function pixels(bitmap, size) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.fillStyle = "#000";
    context.fillRect(0, 0, size, size);
    context.imageSmoothingQuality = "high";
    const side = Math.min(bitmap.width, bitmap.height);
    context.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side,
                      0, 0, size, size);
    return context.getImageData(0, 0, size, size).data;
  }

  /* images.normalize for one image: every step rounded to float32, as NumPy computes it. */
  function normalize(rgba, size) {
    const f = Math.fround;
    const area = size * size;
    const out = new Float32Array(3 * area);
    for (let channel = 0; channel < 3; channel++) {
      const mean = f(manifest.mean[channel]);
      const std = f(manifest.std[channel]);
      for (let i = 0; i < area; i++) {
        const scaled = f(rgba[4 * i + channel] / 255);
        out[channel * area + i] = f(f(scaled - mean) / std);
      }
    }
    return out;
  }

  function softmax(logits) {
    const top = Math.max(...logits);
    const exps = Array.from(logits, (value) => Math.exp(value - top));
    const total = exps.reduce((a, b) => a + b, 0);
    return exps.map((value) => value / total);
  }

  function tensor(bitmap) {
    const size = manifest.size;
    return new ort.Tensor("float32", normalize(pixels(bitmap, size), size), [1, 3, size, size]);
  }

  async function judge(input) {
    const result = await session.run({ [manifest.input]: input });
    const probabilities = softmax(result[manifest.output].data);
    const best = probabilities.indexOf(Math.max(...probabilities));
    return { probabilities, label: manifest.labels[best],
             vampire: probabilities[manifest.labels.indexOf("vampire")] };
  }

  /* The mean of TIMED_RUNS calls, after one untimed call, in milliseconds. One call takes less
   * than the clock's resolution on a fast machine, so the calls are timed as one block. */
  async function latency(input) {
    await session.run({ [manifest.input]: input });
    const start = performance.now();
    for (let i = 0; i < TIMED_RUNS; i++) {
      await session.run({ [manifest.input]: input });
    }
    return (performance.now() - start) / TIMED_RUNS;
  }

  async function decode(blob) {
    return createImageBitmap(blob, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  }

  async function show(bitmap, src, name) {
    const input = tensor(bitmap);
    const verdict = await judge(input);
    const ms = await latency(input);
    const image = part("image");
    image.src = src;
    image.hidden = false;
    part("verdict").textContent = `${name}: ${verdict.label}`;
    part("verdict").dataset.label = verdict.label;
    part("probability").textContent =
      `probability of a vampire: ${verdict.vampire.toFixed(4)}`;
    part("probability").dataset.vampireProbability = verdict.vampire.toPrecision(9);
    part("latency").textContent = `latency in this browser: ${ms.toFixed(2)} ms ` +
      `(mean of ${TIMED_RUNS} runs, ONNX Runtime Web ${manifest.runtime}, WebAssembly, 1 thread)`;
    say("Ready.");
  }

  /* An uploaded file: judged, or refused with a message that says why. */
  async function handleFile(file) {
    if (file.size > MAX_UPLOAD_BYTES) {
      say(`“${file.name}” is ${(file.size / 1e6).toFixed(1)} MB: the limit is 20 MB.`, true);
      return "refused";
    }
    let bitmap;
    try {
      bitmap = await decode(file);
    } catch (error) {
      say(`Could not read “${file.name}” as an image (${error.name}): ` +
          "try a PNG or JPEG file.", true);
      return "refused";
    }
    await show(bitmap, URL.createObjectURL(file), file.name);
    return "judged";
  }

  async function gallery() {
    const shelf = part("gallery");
    for (const [index, portrait] of manifest.portraits.entries()) {
      const src = base + portrait.file;
      const bitmap = await decode(await (await fetch(src)).blob());
      const verdict = await judge(tensor(bitmap));
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.file = portrait.file;
      button.dataset.vampireProbability = verdict.vampire.toPrecision(9);
      button.innerHTML = `<img alt="portrait ${index + 1}" src="${src}">` +
        `${portrait.painted}<br>${verdict.label} ${verdict.vampire.toFixed(2)}`;
      button.addEventListener("click", () => {
        shelf.querySelectorAll("button").forEach((b) => b.classList.remove("vd-picked"));
        button.classList.add("vd-picked");
        show(bitmap, src, `portrait ${index + 1}`);
      });
      shelf.appendChild(button);
    }
    shelf.querySelector("button")?.click();
  }

  async function start() {
    if (location.protocol === "file:") {
      throw new Error("a page opened from a file may not fetch the model and the WebAssembly " +
                      "runtime; serve the book instead, e.g. python -m http.server -d _build/html");
    }
    if (typeof ort === "undefined") {
      throw new Error("ONNX Runtime Web is missing from this build of the book: " +
                      "run `make web-demo` before `make book`");
    }
    const response = await fetch(base + "portraits/portraits.json");
    if (!response.ok) {
      throw new Error("the model and portraits are missing from this build of the book: " +
                      "run `make web-demo` before `make book`");
    }
    manifest = await response.json();
    ort.env.wasm.wasmPaths = new URL(base + "ort/", location.href).href;
    ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which static hosts lack
    session = await ort.InferenceSession.create(base + manifest.model,
                                                { executionProviders: ["wasm"] });
    part("upload").addEventListener("change", (event) => {
      if (event.target.files.length) handleFile(event.target.files[0]);
    });
    await gallery();
    root.dataset.state = "ready";
  }

  const ready = start().catch((error) => {
    say(`The detector could not start: ${error.message}`, true);
    root.dataset.state = "failed";
  });
  window.vampireDemo = { ready, handleFile };
})();

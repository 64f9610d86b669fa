"""Chapter 1's wrong answers: inference, the batch-size decision and upload preprocessing."""

from tests.grading.mistakes import Mistake

CHUNKS = ("torch.softmax(model(inputs[i:i + batch_size].to(device)), dim=1).cpu()\n"
          "                  for i in range(0, len(inputs), batch_size)]")
OPEN = ('        with Image.open(io.BytesIO(data)) as image:\n'
        '            image.load()\n'
        '            rgb = image.convert("RGB")\n')
CAUGHT = ("    except (OSError, SyntaxError, Image.DecompressionBombError) as error:\n"
          '        raise ValueError(f"the upload is not a readable image ({error})") from error\n')
RETURN = "    return to_tensor(np.asarray(rgb))[None]"

MISTAKES = [
    # 1.1 predict_proba
    Mistake("forgets-eval", "1.1", "training mode",
            replace=(("    model.eval()\n    with torch.inference_mode():",
                      "    with torch.inference_mode():"),)),
    Mistake("keeps-autograd", "1.1", "gradients",
            replace=(("    with torch.inference_mode():", "    if True:"),)),
    Mistake("detaches-instead-of-inference-mode", "1.1", "autograd was recording",
            replace=(("    with torch.inference_mode():", "    if True:"),
                     ("dim=1).cpu()", "dim=1).detach().cpu()"))),
    Mistake("softmax-over-the-batch", "1.1", "two classes of each portrait",
            replace=(("dim=1).cpu()", "dim=0).cpu()"),)),
    Mistake("ignores-batch-size", "1.1", "with batch_size=16",
            replace=((CHUNKS, "torch.softmax(model(inputs[i:i + 32].to(device)), dim=1).cpu()\n"
                              "                  for i in range(0, len(inputs), 32)]"),)),
    Mistake("one-portrait-at-a-time", "1.1", "fill each chunk",
            replace=((CHUNKS, "torch.softmax(model(inputs[i:i + 1].to(device)), dim=1).cpu()\n"
                              "                  for i in range(len(inputs))]"),)),
    Mistake("copies-the-library", "1.1", "write it yourself", append='''
from vampire_detector.detector import Detector  # noqa: E402
from vampire_detector.images import MEAN, STD  # noqa: E402


def predict_proba(model, inputs, device=None, batch_size=32):
    pixels = inputs * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    images = (pixels * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    detector = Detector(model, device or next(model.parameters()).device, batch_size)
    return torch.from_numpy(detector.probabilities(images))
'''),
    # 1.2 choose_batch_size
    Mistake("mean-as-p95", "1.2", "judge each batch size by its p95",
            replace=(("if np.percentile(steady, 95) > budget_ms:",
                      "if np.mean(steady) > budget_ms:"),)),
    Mistake("slowest-call-as-p95", "1.2", "not the slowest call",
            replace=(("if np.percentile(steady, 95) > budget_ms:",
                      "if max(steady) > budget_ms:"),)),
    Mistake("budget-is-exclusive", "1.2", "at most the budget",
            replace=(("if np.percentile(steady, 95) > budget_ms:",
                      "if np.percentile(steady, 95) >= budget_ms:"),)),
    Mistake("throughput-by-mean-latency", "1.2", "not the mean",
            replace=(("throughput = batch_size / np.median(steady)",
                      "throughput = batch_size / np.mean(steady)"),)),
    Mistake("largest-batch-that-fits", "1.2", "the largest batch is not always the fastest",
            replace=(("        if throughput > best_throughput:",
                      "        if best is None or batch_size > best:"),)),
    Mistake("keeps-the-warm-up", "1.2", "warm-up calls were counted",
            replace=(("        steady = samples[warmup:]", "        steady = samples"),)),
    Mistake("ties-to-the-larger-batch", "1.2", "the smaller one must win",
            replace=(("        if throughput > best_throughput:",
                      "        if throughput >= best_throughput:"),)),
    # 1.3 preprocess_upload
    Mistake("no-normalisation", "1.3", "not normalised",
            replace=((RETURN, "    return torch.from_numpy(np.asarray(rgb).transpose(2, 0, 1)"
                              ".astype(np.float32) / 255)[None]"),)),
    Mistake("bgr-channel-order", "1.3", "BGR",
            replace=((RETURN, "    return to_tensor(np.ascontiguousarray(np.asarray(rgb)"
                              "[..., ::-1]))[None]"),)),
    Mistake("reshape-instead-of-transpose", "1.3", "transpose them instead",
            replace=((RETURN, "    pixels = torch.from_numpy(np.asarray(rgb).astype(np.float32)"
                              " / 255).reshape(1, 3, 64, 64)\n"
                              "    mean = torch.tensor((0.356, 0.334, 0.318)).view(1, 3, 1, 1)\n"
                              "    std = torch.tensor((0.213, 0.209, 0.212)).view(1, 3, 1, 1)\n"
                              "    return (pixels - mean) / std"),)),
    Mistake("skips-the-rgb-conversion", "1.3", "convert every colour mode to RGB",
            replace=(('rgb = image.convert("RGB")', "rgb = image.copy()"),)),
    Mistake("opens-without-decoding", "1.3", "truncated",
            replace=((OPEN + CAUGHT, "        image = Image.open(io.BytesIO(data))\n" + CAUGHT
                      + '    rgb = image.convert("RGB")\n'),)),
    Mistake("stretches-instead-of-cropping", "1.3", "do not stretch",
            replace=(("rgb = ImageOps.fit(rgb, (IMAGE_SIZE, IMAGE_SIZE), "
                      "Image.Resampling.BILINEAR)",
                      "rgb = rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)"),)),
    Mistake("copies-the-library", "1.3", "write it yourself", append='''
from vampire_detector.service.errors import ServiceError  # noqa: E402
from vampire_detector.service.uploads import UploadLimits, read_portrait  # noqa: E402


def preprocess_upload(data):
    try:
        pixels = read_portrait(data, "application/octet-stream",
                              UploadLimits(2**24, 2**24, IMAGE_SIZE))
    except ServiceError as error:
        raise ValueError(error.message) from error
    return to_tensor(pixels)[None]
'''),
]

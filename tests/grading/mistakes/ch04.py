"""Chapter 4's wrong answers: the border model's export, the session, the detector, parity."""

from tests.grading.mistakes import Mistake

# The library's float export (vampire_detector.onnx_export.export_onnx), pasted in by hand.
PASTED_EXPORT = '''
def export_border_model(model, path, image_size=IMAGE_SIZE):
    path = Path(path)
    model.eval()
    example = torch.randn(2, 3, image_size, image_size)
    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                input_names=["images"], output_names=["logits"],
                                dynamic_shapes=({0: Dim("batch", min=1, max=4096)},))
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path
'''

# The library's session (vampire_detector.ort_detector.pick_providers and load_session).
PASTED_SESSION = '''
def make_session(path, threads=1, providers=(CPU,)):
    if not Path(path).is_file():
        raise FileNotFoundError(f"no ONNX model at {path}")
    available = ort.get_available_providers()
    missing = [name for name in providers if name not in available]
    if missing:
        raise ValueError(f"onnxruntime {ort.__version__} here has no {', '.join(missing)}; "
                         f"available: {', '.join(available)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options,
                                providers=[*[n for n in providers if n != CPU], CPU])
'''

# The library's OrtDetector: the training preprocessing done in Python, before the session.
PASTED_DETECTOR = '''
from vampire_detector.images import normalize
from vampire_detector.predictor import Predictor, softmax


class BorderDetector(Predictor):
    def __init__(self, path, threads=1, batch_size=64):
        self.session = make_session(path, threads)
        self.batch_size = batch_size
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name

    def probabilities(self, images):
        chunks = [self.session.run(None, {self.input_name: normalize(
            images[i:i + self.batch_size])})[0]
            for i in range(0, len(images), self.batch_size)]
        return softmax(np.concatenate(chunks))
'''

CHECK = '''        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != wanted:
            raise ValueError('''

MISTAKES = [
    Mistake("copies-the-library-4.1", "4.1", "write it yourself",
            append="from vampire_detector.onnx_export import export_onnx as export_border_model"),
    Mistake("pastes-the-library-export", "4.1", "raw pixels", append=PASTED_EXPORT),
    Mistake("fixed-batch-export", "4.1", "fixed size",
            replace=(("(2, image_size, image_size, 3)", "(1, image_size, image_size, 3)"),
                     (',\n                                dynamic_shapes=({0: Dim("batch")},))',
                      ")"))),
    Mistake("exported-in-training-mode", "4.1", "eval mode",
            replace=(("border = BorderModel(model).eval()", "border = BorderModel(model)"),)),
    Mistake("no-normalisation-in-graph", "4.1", "normalise with MEAN and STD",
            replace=(("return self.model((x - self.mean) / self.std)",
                      "return self.model(x)"),)),
    Mistake("channels-by-reshape", "4.1", "the axes, not just the shape",
            replace=(("x = pixels.permute(0, 3, 1, 2)",
                      "x = pixels.reshape(-1, 3, pixels.shape[1], pixels.shape[2])"),)),
    Mistake("copies-the-library-4.2", "4.2", "write it yourself",
            append="from vampire_detector.ort_detector import load_session as make_session"),
    Mistake("pastes-the-library-session", "4.2", "fall back", append=PASTED_SESSION),
    Mistake("providers-ignored", "4.2", "order of preference",
            replace=(("providers=chosen)", "providers=[CPU])"),)),
    Mistake("silent-fallback", "4.2", "never fall back silently",
            replace=(("            warnings.warn(", "            (lambda *args, **kw: None)("),)),
    Mistake("threads-ignored", "4.2", "intra-op threads",
            replace=(("    options.intra_op_num_threads = threads\n", ""),)),
    Mistake("spinning-left-on", "4.2", "spin",
            replace=(('    options.add_session_config_entry("session.intra_op.allow_spinning", '
                      '"0")\n', ""),)),
    Mistake("copies-the-library-4.3", "4.3", "write it yourself",
            append="from vampire_detector.ort_detector import OrtDetector as BorderDetector"),
    Mistake("pastes-the-library-detector", "4.3", "pixels unchanged", append=PASTED_DETECTOR),
    Mistake("softmax-on-the-wrong-axis", "4.3", "over the classes",
            replace=(("np.exp(logits - logits.max(axis=1, keepdims=True))",
                      "np.exp(logits - logits.max(axis=0, keepdims=True))"),
                     ("shifted / shifted.sum(axis=1, keepdims=True)",
                      "shifted / shifted.sum(axis=0, keepdims=True)"))),
    Mistake("no-input-check", "4.3", "raise ValueError",
            replace=((CHECK, "        if False:\n            raise ValueError("),)),
    Mistake("hard-coded-image-size", "4.3", "read the height and width",
            replace=(("wanted = (self.height, self.width, 3)",
                      "wanted = (IMAGE_SIZE, IMAGE_SIZE, 3)"),)),
    Mistake("probability-of-the-vampire-class", "4.3", "its predicted label",
            replace=(("Prediction(LABELS[i], float(row[i]))",
                      "Prediction(LABELS[i], float(row[1]))"),)),
    Mistake("parity-in-train-mode", "4.4", "eval mode",
            replace=(("    model.eval()\n    generator", "    generator"),)),
    Mistake("compares-probabilities", "4.4", "not a difference of probabilities",
            replace=(("errors[size] = float(np.abs(actual - expected).max())",
                      "errors[size] = float(np.abs(torch.softmax(torch.from_numpy(actual), 1)"
                      " - torch.softmax(torch.from_numpy(expected), 1)).max().item())"),)),
    Mistake("mean-not-max", "4.4", "not their mean",
            replace=(("errors[size] = float(np.abs(actual - expected).max())",
                      "errors[size] = float(np.abs(actual - expected).mean())"),)),
    Mistake("signed-difference", "4.4", "absolute difference",
            replace=(("errors[size] = float(np.abs(actual - expected).max())",
                      "errors[size] = float((actual - expected).max())"),)),
]

"""Chapter 5's wrong answers: the calibration reader and the sensitivity-guided quantizer."""

from tests.grading.mistakes import Mistake

EAGER_READER = '''
_LazyGateReader = GateReader


class GateReader(_LazyGateReader):
    """Every portrait opened and preprocessed when the reader is made."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loaded = [normalize(np.stack([from_png(f.read_bytes()) for f in files]))
                       for files in self.batches]

    def get_next(self):
        if self.cursor >= len(self.loaded):
            return None
        self.cursor += 1
        return {self.input_name: self.loaded[self.cursor - 1]}
'''

LIBRARY_QUANTIZER = '''
from vampire_detector.quantize import quantize_onnx_static


def quantize_for_the_border(fp32_path, out_path, reader, inputs, keep_fp32=1):
    quantize_onnx_static(fp32_path, out_path, reader)
    return []
'''

BORDER_CALIBRATION = """        reader.rewind()
        quantize_static(str(prepared), str(out_path), reader, quant_format=QuantFormat.QDQ,
                        per_channel=False, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=kept)"""

MISTAKES = [
    Mistake("copies-the-library", "5.1", "write it yourself",
            append="from vampire_detector.quantize import PortraitCalibrationReader as GateReader"),
    Mistake("same-batch-forever", "5.1", "never returned None",
            replace=(("        self.cursor += 1\n        return {self.input_name",
                      "        return {self.input_name"),)),
    Mistake("not-normalised", "5.1", "normalise",
            replace=(("normalize(np.stack([from_png(f.read_bytes()) for f in files]))",
                      "np.stack([from_png(f.read_bytes()) for f in files])"
                      ".transpose(0, 3, 1, 2).astype(np.float32) / 255"),)),
    Mistake("mixes-populations", "5.1", "never two populations",
            replace=(("        self.input_name = input_name\n",
                      "        drawn = [file for batch in self.batches for file in batch]\n"
                      "        self.batches = [drawn[i:i + batch_size]\n"
                      "                        for i in range(0, len(drawn), batch_size)]\n"
                      "        self.input_name = input_name\n"),)),
    Mistake("rounds-each-quota", "5.1", "largest remainder",
            replace=(("math.floor(quota) for", "round(quota) for"),
                     ("by_remainder[:n - sum(shares.values())]", "by_remainder[:0]"))),
    Mistake("reads-everything-up-front", "5.1", "when get_next asks", append=EAGER_READER),
    Mistake("copies-the-library", "5.2", "write it yourself", append=LIBRARY_QUANTIZER),
    Mistake("dynamic-instead-of-static", "5.2", "static",
            replace=((BORDER_CALIBRATION,
                      "        from onnxruntime.quantization import quantize_dynamic\n"
                      "        quantize_dynamic(str(prepared), str(out_path),\n"
                      "                         weight_type=QuantType.QInt8, "
                      "nodes_to_exclude=kept)"),)),
    Mistake("sensitivity-of-all-but-one", "5.2", "alone",
            replace=(("nodes_to_quantize=[name])", "nodes_to_exclude=[name])"),)),
    Mistake("reader-never-rewound", "5.2", "rewind",
            replace=(("        for name in names:\n            reader.rewind()\n",
                      "        for name in names:\n"),
                     (BORDER_CALIBRATION, BORDER_CALIBRATION.replace("        reader.rewind()\n",
                                                                     "", 1)))),
    Mistake("keeps-the-least-sensitive", "5.2", "most sensitive",
            replace=(("key=sensitivity.__getitem__, reverse=True)",
                      "key=sensitivity.__getitem__)"),)),
    Mistake("input-name-hard-coded", "5.2", "input name",
            replace=(("{session.get_inputs()[0].name: inputs}", '{"images": inputs}'),)),
]

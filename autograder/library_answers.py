"""The library modules that hold an exercise's answer, closed to that chapter's submission.

Several exercises ask for something the course library also has (the chapter teaches with it).
Importing the library's copy would pass without understanding anything, so while grading, a
chapter's own file cannot import the modules listed for it: the import raises an ``ImportError``
that names the exercise. The check happens in the sandbox, on the import itself (see
``sandbox_child.close_library``), so it holds however the import is written: ``import a.b``,
``from a import b``, ``from a.b import c`` or ``importlib.import_module``. Other chapters, the
grader's probes and the library's own imports are not affected.

Closing an import is the first line only: each redesigned exercise also asks for a variant the
library does not have, so a pasted copy of the library's code fails its tests too.
"""

from __future__ import annotations

# submission module -> {library module: the exercise whose answer it holds}
CLOSED: dict[str, dict[str, str]] = {
    # Detector.probabilities is predict_proba for uint8 images; torch_serving re-exports it.
    # The service reads uploads (to a centred square) but only as PNG, JPEG or WebP.
    "ch01_detector": {"vampire_detector.detector": "1.1", "vampire_detector.torch_serving": "1.1",
                      "vampire_detector.service": "1.3"},
    "ch04_onnx": {
        "vampire_detector.onnx_export": "4.1",  # export_onnx: a float model with a dynamic batch
        "vampire_detector.ort_detector": "4.2 and 4.3",  # load_session, OrtDetector
    },
    # the calibration reader (5.1) and the static quantizer (5.2)
    "ch05_quantization": {"vampire_detector.quantize": "5.1 and 5.2"},
    "ch06_service": {"vampire_detector.service.uploads": "6.1",
                     "vampire_detector.service.decoding": "6.1",
                     "vampire_detector.service.batcher": "6.2"},
    "ch08_lambda": {"vampire_detector.service.lambda_handler": "8.1"},
    "ch10_monitoring": {"vampire_detector.service.metrics": "10.1",
                        "vampire_detector.drift": "10.3"},
    # export_for_edge, lower_to_xnnpack, save_pte and delegation lower and count (11.1);
    # require_full_delegation refuses a program with portable operators (11.2).
    "ch11_edge": {"vampire_detector.edge": "11.1 and 11.2"},
    "ch12_security": {"vampire_detector.service.auth": "12.1 and 12.2",
                      "vampire_detector.service.uploads": "12.3",
                      "vampire_detector.service.decoding": "12.3"},
    # the gate's budget checks (13.1), the shadow comparator (13.2), and the A/B simulation's
    # test (13.3: a likelihood-ratio test, not the exercise's z-test, but a decision all the same)
    "ch13_release": {"vampire_detector.release_gate": "13.1", "vampire_detector.rollout": "13.2",
                     "vampire_detector.ab_simulation": "13.3"},
    # the Vertex adapter (14.3): the platforms' routes and the JSON instances reader in uploads
    "ch14_servers": {"vampire_detector.torchserve_handler": "14.1",
                     "vampire_detector.platforms": "14.3",
                     "vampire_detector.service.uploads": "14.3"},
}

"""The sandboxed side of sealed grading: imports a submission and runs what the grader asks.

This file is copied into the sandbox and started there as a script; it must not import anything
of the course but ``numpy``. It serves requests that arrive on one pipe and answers on another
(their numbers are in ``GRADING_FDS``), one length-prefixed JSON frame each, so that whatever
the student's code prints goes to its own stdout and never into the answers.

Only plain data crosses: JSON values, bytes, paths and numpy arrays (``.npy`` bytes, read back
with ``allow_pickle=False``). Any other object stays here and travels as a numbered handle that
the grader can ask about, attribute by attribute. Nothing is ever unpickled on either side.
The same encoding serves both directions; the grader imports it from this file.
"""

from __future__ import annotations

import base64
import builtins
import importlib
import importlib.util
import io
import json
import math
import os
import struct
import sys
import traceback
from pathlib import Path, PurePath

import numpy as np

HEADER = struct.Struct(">Q")
MAX_FRAME = 256 * 2**20  # bytes; a larger frame is an attack on the grader's memory


class Handle:
    """An object that cannot cross: it stays where it was made and is named by a number."""

    def __init__(self, number: int, kind: str):
        self.number, self.kind = number, kind


def encode(value: object, keep: callable) -> object:
    """``value`` as JSON-safe data; ``keep(obj)`` turns what cannot cross into a Handle."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return encode(value.item(), keep)
    if isinstance(value, np.ndarray) and value.dtype != object:
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return {"$": "array", "npy": base64.b64encode(buffer.getvalue()).decode()}
    if isinstance(value, bytes):
        return {"$": "bytes", "b64": base64.b64encode(value).decode()}
    if isinstance(value, PurePath):
        return {"$": "path", "v": str(value)}
    if isinstance(value, list):
        return [encode(item, keep) for item in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return {"$": "tuple", "items": [encode(item, keep) for item in value]}
    if isinstance(value, dict) and type(value) is dict:
        return {"$": "dict", "items": [[encode(k, keep), encode(v, keep)]
                                       for k, v in value.items()]}
    handle = keep(value)
    return {"$": "handle", "id": handle.number, "kind": handle.kind}


def decode(data: object, resolve: callable, path: type = PurePath) -> object:
    """The inverse of ``encode``; ``resolve(number, kind)`` gives back what a handle names.

    Paths come back as ``path``: pure paths for the grader, which never follows one blindly,
    and ``pathlib.Path`` here, where the student's code opens them.
    """
    if isinstance(data, list):
        return [decode(item, resolve, path) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get("$")
    if tag == "float":
        return float(data["v"])
    if tag == "array":
        return np.load(io.BytesIO(base64.b64decode(data["npy"])), allow_pickle=False)
    if tag == "bytes":
        return base64.b64decode(data["b64"])
    if tag == "path":
        return path(data["v"])
    if tag == "tuple":
        return tuple(decode(item, resolve, path) for item in data["items"])
    if tag == "dict":
        return {decode(k, resolve, path): decode(v, resolve, path) for k, v in data["items"]}
    if tag == "handle":
        return resolve(int(data["id"]), str(data.get("kind", "object")))
    raise ValueError(f"unknown tag {tag!r}")


def read_frame(stream) -> dict | None:
    """One JSON frame, or None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes is over the limit")
    body = stream.read(size)
    if len(body) < size:
        return None
    return json.loads(body)


def write_frame(stream, message: dict) -> None:
    body = json.dumps(message, allow_nan=False).encode()
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


class Server:
    """Keeps the objects the grader holds handles to, and runs its requests on them."""

    def __init__(self):
        self.objects: dict[int, object] = {}

    def keep(self, value: object) -> Handle:
        number = len(self.objects) + 1
        self.objects[number] = value
        return Handle(number, type(value).__name__)

    def resolve(self, number: int, kind: str) -> object:
        return self.objects[number]

    def handle(self, request: dict) -> object:
        op = request["op"]
        if op == "import":
            return importlib.import_module(request["module"])
        target = self.objects[request["id"]]
        if op == "getattr":
            return getattr(target, request["name"])
        if op == "call":
            args = decode(request["args"], self.resolve, Path)
            kwargs = decode(request["kwargs"], self.resolve, Path)
            return target(*args, **kwargs)
        raise ValueError(f"unknown request {op!r}")

    def answer(self, request: dict) -> dict:
        try:
            return {"ok": encode(self.handle(request), self.keep)}
        except BaseException as error:  # the student's code may raise anything, SystemExit too
            return {"error": describe(error)}


def describe(error: BaseException) -> dict:
    """An exception as plain data: its type, message and the submission's own frames."""
    frames = [[frame.filename, frame.lineno, frame.line or ""]
              for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename.startswith(SUBMISSION)]
    return {"type": type(error).__name__, "message": str(error)[:2000], "frames": frames}


SUBMISSION = os.environ.get("GRADING_SUBMISSION", os.getcwd())


def _caller_file() -> str:
    """The file of the nearest frame that has one: code run by ``exec`` has none of its own."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_globals is globals()
                                 or "__file__" not in frame.f_globals):
        frame = frame.f_back
    return "" if frame is None else str(frame.f_globals["__file__"])


def close_library(closed: dict[str, dict[str, str]]) -> None:
    """Refuse the imports ``closed`` lists: ``{"ch04_onnx": {"vampire_detector.x": "4.1"}}``.

    Both doors are guarded: the ``import`` statement (``builtins.__import__``) and
    ``importlib.import_module``. Who imports is read from the importing frame's ``__file__``, so
    only a submission's own chapter file is refused, never the library importing itself.
    """
    plain_import, plain_import_module = builtins.__import__, importlib.import_module

    def check(name: str, importer: dict) -> None:
        file = str(importer.get("__file__") or _caller_file())
        if not file.startswith(SUBMISSION):
            return
        for module, exercise in closed.get(Path(file).stem, {}).items():
            if name == module or name.startswith(module + "."):
                raise ImportError(
                    f"{module} holds the library's own answer to Exercise {exercise}, so it "
                    f"cannot be imported while that exercise is graded: write it yourself")

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = globals if globals is not None else sys._getframe(1).f_globals
        if level:
            name_ = importlib.util.resolve_name("." * level + name, importer.get("__package__"))
        else:
            name_ = name
        for wanted in [name_, *(f"{name_}.{item}" for item in fromlist or ())]:
            check(wanted, importer)
        return plain_import(name, globals, locals, fromlist, level)

    def guarded_import_module(name, package=None):
        check(importlib.util.resolve_name(name, package) if name.startswith(".") else name,
              sys._getframe(1).f_globals)
        return plain_import_module(name, package)

    builtins.__import__ = guarded_import
    importlib.import_module = guarded_import_module


def main() -> None:
    inbound, outbound = (int(fd) for fd in os.environ["GRADING_FDS"].split(","))
    requests, answers = os.fdopen(inbound, "rb"), os.fdopen(outbound, "wb")
    sys.path[:0] = [os.environ["GRADING_LIBRARY"], SUBMISSION]
    close_library(json.loads(os.environ.get("GRADING_CLOSED", "{}")))
    server = Server()
    while (request := read_frame(requests)) is not None:
        write_frame(answers, server.answer(request))


if __name__ == "__main__":
    main()

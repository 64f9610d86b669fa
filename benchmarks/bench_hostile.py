"""What hostile uploads cost the service: CPU seconds, peak memory, and ``/health`` latency.

    python benchmarks/bench_hostile.py                      # about a minute on two cores
    python benchmarks/bench_hostile.py --library /tmp/old   # the same uploads, older code

Part one decodes each crafted upload once, in a fresh process, with the service's
``read_portrait``, and reports the answer, the CPU seconds and the peak resident memory it
added. Part two sends a crowd of them at once to the service (a constant model in place of the
real one, so only the uploads cost anything) while a prober asks ``/health`` every 50 ms, and
reports the answers, the process's peak memory and the slowest ``/health`` (counting how late
the prober woke: a blocked event loop delays both). ``--library``
points the child processes at another copy of ``vampire_detector``, to measure before and after
a change. Writes ``_build/bench/hostile.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vampire_detector.harness.hostile import broken_exif, jpeg_with_scans, lossless_webp, with_exif
from vampire_detector.images import encode
from vampire_detector.paths import course_root

OUT = Path("_build/bench")

# The peak resident memory of this process since it started (ru_maxrss would also count the
# parent's memory from before exec).
PEAK_KIB = """
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""

DECODE_ONCE = PEAK_KIB + """
import json, sys, time
from pathlib import Path
from vampire_detector.service.errors import ServiceError
from vampire_detector.service.uploads import UploadLimits, read_portrait
data, content_type = Path(sys.argv[1]).read_bytes(), sys.argv[2]
limits = UploadLimits(4_000_000, 4096 * 4096, 64)
before_kib, start = peak_kib(), time.process_time()
try:
    read_portrait(data, content_type, limits)
    status = 200
except ServiceError as error:
    status = error.status
cpu_s = time.process_time() - start
grown = peak_kib() - before_kib
print(json.dumps({"status": status, "cpu_s": round(cpu_s, 3),
                  "rss_added_mib": round(grown / 1024, 1)}))
"""

CROWD = PEAK_KIB + """
import asyncio, json, sys, time
from collections import Counter
from pathlib import Path
import httpx, numpy as np
from vampire_detector.predictor import Predictor
from vampire_detector.service.app import create_app
from vampire_detector.service.runtimes import LoadedModel
from vampire_detector.service.settings import ServiceSettings

class Constant(Predictor):
    def probabilities(self, images):
        return np.tile(np.float32([[0.4, 0.6]]), (len(images), 1))

data, content_type, copies = Path(sys.argv[1]).read_bytes(), sys.argv[2], int(sys.argv[3])
app = create_app(ServiceSettings(max_upload_bytes=4_000_000, warmup_batches=0),
                 loader=lambda settings: LoadedModel(Constant(), "constant"),
                 load_in_background=False)

async def main():
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     timeout=300) as client:
            await client.get("/health")
            slowest, done = 0.0, False

            async def probe():  # a stalled event loop delays the wake-up as well as the answer
                nonlocal slowest
                while not done:
                    start = time.perf_counter()
                    await asyncio.sleep(0.05)
                    await client.get("/health")
                    slowest = max(slowest, time.perf_counter() - start - 0.05)

            prober = asyncio.ensure_future(probe())
            base_kib, start = peak_kib(), time.perf_counter()
            cpu = time.process_time()
            answers = await asyncio.gather(*(client.post(
                "/predict", files={"image": ("p", data, content_type)}) for _ in range(copies)))
            seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
            done = True
            await prober
    statuses = Counter(str(a.status_code) for a in answers)
    peak = peak_kib()
    print(json.dumps({"answers": dict(statuses), "seconds": round(seconds, 2),
                      "cpu_s": round(cpu_s, 2), "peak_rss_mib": round(peak / 1024),
                      "rss_added_mib": round((peak - base_kib) / 1024),
                      "slowest_health_ms": round(slowest * 1000)}))

asyncio.run(main())
"""


def hostile_uploads(side: int, scans: int) -> dict[str, tuple[bytes, str]]:
    """The crafted uploads, by name: (bytes, declared content type)."""
    rgba = Image.new("RGBA", (side, side), (90, 20, 20, 255))
    flat = np.full((side // 2, side // 2, 3), 90, np.uint8)
    portrait = np.full((64, 64, 3), 120, np.uint8)
    return {
        f"{side}x{side} RGBA PNG": (encode(rgba, "PNG"), "image/png"),
        f"{side}x{side} lossless WebP": (lossless_webp(side), "image/webp"),
        f"{side}x{side} JPEG": (encode(np.full((side, side, 3), 90, np.uint8), "JPEG"),
                                "image/jpeg"),
        f"{side // 2}x{side // 2} progressive JPEG, {scans} extra scans": (
            jpeg_with_scans(flat, scans), "image/jpeg"),
        "JPEG with broken EXIF": (with_exif(portrait, "JPEG", broken_exif()), "image/jpeg"),
    }


def run_child(code: str, library: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(library)}
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=library,
                            capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, default=course_root(),
                        help="the folder holding the vampire_detector package to measure")
    parser.add_argument("--side", type=int, default=4096, help="the side the uploads declare")
    parser.add_argument("--scans", type=int, default=2000, help="extra scans in the JPEG bomb")
    parser.add_argument("--crowd", type=int, default=8, help="large PNGs sent at once")
    parser.add_argument("--webp-crowd", type=int, default=30, help="tiny WebPs sent at once")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for hostile.json")
    args = parser.parse_args(argv)
    if args.side < 64 or args.scans < 0 or args.crowd < 1 or args.webp_crowd < 1:
        parser.error("side must be at least 64; scans, crowd and webp-crowd not negative")
    uploads = hostile_uploads(args.side, args.scans)
    numbers: dict = {"library": str(args.library), "decode_once": {}, "crowds": {}}
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for index, (name, (data, content_type)) in enumerate(uploads.items()):
            files[name] = path = Path(folder) / f"upload{index}"
            path.write_bytes(data)
            row = {"bytes": len(data), **run_child(DECODE_ONCE, args.library, str(path),
                                                   content_type)}
            numbers["decode_once"][name] = row
            print(f"{name:45s} {row}", flush=True)
        png, webp = list(uploads)[:2]
        for name, copies in ((png, args.crowd), (webp, args.webp_crowd)):
            row = run_child(CROWD, args.library, str(files[name]), uploads[name][1],
                            str(copies))
            numbers["crowds"][f"{copies} x {name} at once"] = row
            print(f"{copies} x {name} at once: {row}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hostile.json").write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

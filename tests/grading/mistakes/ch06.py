"""Chapter 6's wrong answers: the upload checks, the micro-batcher, the warden and the route."""

from tests.grading.mistakes import Mistake

SNIFF = ("    found = next((kind for start, kind in SIGNATURES.items() "
         "if data.startswith(start)), None)\n")
COLLECT = "            while len(self.waiting) < self.max_batch_size and not self.closed:\n"
FAIL_WAITING = """        for future in list(self.waiting):
            del self.waiting[future]
            if not future.done():
                future.set_exception(closed())
"""
LIBRARY_UPLOADS = '''
from vampire_detector.service.uploads import UploadLimits
from vampire_detector.service.uploads import read_portrait as library_read_portrait


def read_portrait(data, content_type, *, max_bytes=1_000_000, max_pixels=4096 * 4096,
                  size=IMAGE_SIZE):
    return library_read_portrait(data, content_type, UploadLimits(max_bytes, max_pixels, size))
'''
LIBRARY_BATCHER = '''
from vampire_detector.service import batcher as library_batcher


class MicroBatcher(library_batcher.MicroBatcher):
    async def close(self):
        await self.stop()
'''

MISTAKES = [
    Mistake("trusts-the-declared-type", "6.1", "contradict",
            replace=((SNIFF, SNIFF.replace("found = next(", "found = promised or next(")),)),
    Mistake("not-an-image-is-415", "6.1", "unprocessable",
            replace=(('raise ServiceError(422, "undecodable", f"the file is not a {promised} '
                      'image")',
                      'raise ServiceError(415, "undecodable", f"the file is not a {promised} '
                      'image")'),)),
    Mistake("squashes-instead-of-cropping", "6.1", "centred square",
            replace=(("np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR)",
                      "np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR)"),)),
    Mistake("no-rgb-conversion", "6.1", "converted to RGB",
            replace=(('    rgb = image.convert("RGB")\n', "    rgb = image\n"),)),
    Mistake("decodes-before-checking-size", "6.1", "before decoding",
            replace=(("    width, height = image.size\n",
                      "    image.load()\n    width, height = image.size\n"),)),
    Mistake("decodes-jpegs-at-full-size", "6.1", "reduced size",
            replace=(("        image.draft(None, (size, size))\n", ""),)),
    Mistake("copies-the-library", "6.1", "write it yourself", append=LIBRARY_UPLOADS),
    Mistake("runs-one-by-one", "6.2", "one by one",
            replace=((COLLECT, "            while False:\n"),
                     ("oldest = list(self.waiting)[: self.max_batch_size]",
                      "oldest = list(self.waiting)[:1]"))),
    Mistake("never-sends-a-partial-batch", "6.2", "never fills",
            replace=(("closes_at = loop.time() + self.max_wait_s",
                      "closes_at = loop.time() + 3600"),)),
    Mistake("waits-the-full-delay", "6.2", "at once",
            replace=((COLLECT, "            await asyncio.sleep(self.max_wait_s)\n"
                               "            while False:\n"),)),
    Mistake("loses-a-failing-batch", "6.2", "still get an answer",
            replace=(("        except Exception as error:\n            if len(batch) == 1:",
                      "        except ZeroDivisionError as error:\n"
                      "            if len(batch) == 1:"),)),
    Mistake("answers-in-the-wrong-order", "6.2", "its own item",
            replace=(("zip(batch, results, strict=True)",
                      "zip(batch, list(results)[::-1], strict=True)"),)),
    Mistake("cancelled-items-still-run", "6.2", "gave up",
            replace=(("            self.waiting.pop(future, None)  # gone already if the "
                      "worker took it\n", "            pass\n"),)),
    Mistake("close-forgets-the-waiting", "6.2", "left the waiting callers",
            replace=((FAIL_WAITING, ""),)),
    Mistake("copies-the-library", "6.2", "write it yourself", append=LIBRARY_BATCHER),
    Mistake("ready-while-warming", "6.3", "still warming",
            replace=(("        for _ in range(self.rounds):\n"
                      "            self.predictor.predict(self.warmup_images)\n"
                      "        self.warmed = True\n",
                      "        self.warmed = True\n"
                      "        for _ in range(self.rounds):\n"
                      "            self.predictor.predict(self.warmup_images)\n"),)),
    Mistake("warms-once", "6.3", "rounds",
            replace=(("        for _ in range(self.rounds):\n"
                      "            self.predictor.predict(self.warmup_images)\n",
                      "        self.predictor.predict(self.warmup_images)\n"),)),
    Mistake("not-ready-without-error-body", "6.3", "error",
            replace=(('return error_response(503, "not_ready", "the model is still warming up")',
                      'return JSONResponse({"ready": False}, status_code=503)'),)),
    Mistake("calls-the-model-without-the-batcher", "6.4", "one by one",
            replace=(("        prediction = await request.app.state.batcher.submit(pixels)\n",
                      "        (prediction,) = await anyio.to_thread.run_sync(\n"
                      "            request.app.state.predictor.predict, pixels[np.newaxis])\n"),)),
    Mistake("predicts-on-the-event-loop", "6.4", "event loop",
            replace=(("        prediction = await request.app.state.batcher.submit(pixels)\n",
                      "        (prediction,) = request.app.state.predictor.predict("
                      "pixels[np.newaxis])\n"),)),
    Mistake("no-503-before-ready", "6.4", "warming",
            replace=(('        if not request.app.state.warden.ready:\n'
                      '            raise ServiceError(503, "not_ready", "the model is still '
                      'warming up; retry shortly")\n', ""),)),
    Mistake("latency-in-seconds", "6.4", "milliseconds",
            replace=(('"latency_ms": (time.perf_counter() - start) * 1000}',
                      '"latency_ms": time.perf_counter() - start}'),)),
]

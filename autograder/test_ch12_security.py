"""Chapter 12 — Locking the gate.

Sealed: your code runs in a sandboxed process. The probes of ``autograder/probes/ch12.py`` put
your key ring behind a real FastAPI app (and watch every ``hmac.compare_digest`` call), run your
rate limiter on a clock they turn and under threads, and watch Pillow's decoders while your
guard reads an upload; the expected answers are computed here, by the grader's own token bucket
and from the images it made. The NetworkPolicies of Exercise 12.4 are validated strictly and
then asked, connection by connection, who may reach whom
(``vampire_detector.shipping.netpol``).

Your key ring, rate limiter and guard cannot import the service's own (``service.auth``,
``service.uploads``, ``service.decoding``): each exercise asks for more than they do.

Wrong answers these tests catch, each with feedback that names the problem:

- 12.1 ``equals-instead-of-compare-digest``: digests compared with ``==``, whose time depends
  on where they differ.
- 12.1 ``stops-at-first-match``: ``any(...)`` over the stored digests, which stops comparing
  at the first match.
- 12.1 ``keys-in-plain-text``: the ring keeps the keys themselves instead of their digests.
- 12.1 ``forbidden-for-a-wrong-key``: 403 for a key that is not valid (it is 401: not
  authenticated; 403 means a valid key without the permission).
- 12.1 ``no-www-authenticate``: a 401 without the ``WWW-Authenticate`` challenge.
- 12.1 ``copies-the-library``: the service's ``ApiKeys`` imported (refused), which has no
  scopes either.
- 12.2 ``refills-past-capacity``: a bucket that keeps filling while its owner is away.
- 12.2 ``retry-after-in-milliseconds``: Retry-After counted in milliseconds.
- 12.2 ``retry-after-rounded-down``: Retry-After rounded down, so the client comes back early.
- 12.2 ``refusals-spend-tokens``: refused requests spend tokens, driving the bucket negative.
- 12.2 ``no-lock``: a bucket read and written by threads without a lock.
- 12.2 ``copies-the-library-bucket``: the service's ``TokenBuckets`` imported (refused).
- 12.3 ``decodes-before-checking``: the pixels decoded before the declared size is checked.
- 12.3 ``searches-bytes-for-sof``: a frame header found by searching the bytes, which finds
  one inside the EXIF metadata.
- 12.3 ``only-baseline-sof``: only SOF0 read, so progressive JPEGs are refused.
- 12.3 ``jpeg-width-height-swapped``: a JPEG frame header read as width then height.
- 12.3 ``dht-taken-for-a-frame``: every marker from 0xC0 to 0xCF taken for a frame header,
  the Huffman tables (0xC4) included.
- 12.3 ``copies-the-library-guard``: the service's ``open_portrait`` imported (refused).
- 12.4 ``allows-all-ingress``: an ingress rule without ``from``, which admits every pod.
- 12.4 ``namespace-or-pod``: the namespace and pod selectors written as two peers, which admits
  the whole monitoring namespace and any pod so labelled in the night watch's own.
- 12.4 ``one-rule-for-both-ports``: the gateway and Prometheus in one rule, each reaching both
  ports.
- 12.4 ``no-default-deny``: no policy selecting every pod, so the namespace's other pods are
  open.
- 12.4 ``egress-left-open``: the default deny covering ingress only.
- 12.4 ``dns-over-udp-only``: DNS allowed over UDP only, which fails for long answers.
- 12.4 ``copies-the-deploy-file``: the detector's own policy from deploy/k8s, which admits the
  gateway's whole namespace and Prometheus on the web port.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct

import numpy as np
import pytest
from PIL import Image

from vampire_detector.harness.hostile import png_claiming
from vampire_detector.images import encode
from vampire_detector.shipping.manifests import Manifest, documents, strict_errors
from vampire_detector.shipping.netpol import Pod, allowed


@pytest.fixture(scope="module")
def ch12(submission):
    return submission("ch12_security")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch12", "ch12_security")


# Exercise 12.1 ------------------------------------------------------------------------------

CLIENTS = [["renfield", "rf-7Qx2-garlic-0001", ["predict"]],
           ["van-helsing", "vh-9Lm4-stake-0002", ["predict", "admin"]],
           ["mina", "mh-3Pz8-diary-0003", ["predict"]],
           ["jonathan", "jh-5Kw1-castle-0004", []]]
KEY = {name: key for name, key, _ in CLIENTS}
STRANGER_KEY = "rf-7Qx2-garlic-0009"  # shares its first 16 characters with Renfield's


def digests(key: str) -> set[object]:
    raw = hashlib.sha256(key.encode()).digest()
    return {raw, raw.hex(), raw.hex().upper()}


@pytest.fixture(scope="module")
def gate(probe) -> list[dict]:
    requests = [["/predict", KEY["renfield"]], ["/reload", KEY["van-helsing"]],
                ["/predict", None], ["/predict", ""], ["/predict", STRANGER_KEY],
                ["/reload", KEY["renfield"]], ["/predict", KEY["jonathan"]]]
    return probe.key_ring(CLIENTS, requests)


def answer(gate: dict, index: int) -> dict:
    return gate["answers"][index]


def detail(seen: dict) -> str:
    body = seen["body"]
    return str(body.get("detail", "")) if isinstance(body, dict) else str(body)


@pytest.mark.exercise("12.1")
@pytest.mark.points(2)
def test_a_valid_key_with_the_scope_passes_as_its_client(gate):
    """12.1 A valid key with the route's scope passes, and the route learns its client's name"""
    for index, name in ((0, "renfield"), (1, "van-helsing")):
        seen = answer(gate, index)
        assert seen["status"] == 200, \
            f"a valid key with the route's scope was answered {seen['status']}"
        assert seen["body"] == {"client": name}, \
            "the dependency must return the name of the key's client"


@pytest.mark.exercise("12.1")
@pytest.mark.points(2)
def test_a_missing_or_unknown_key_is_401_with_a_challenge(gate):
    """12.1 No key, an empty key or an unknown key: 401, WWW-Authenticate, and the reason"""
    missing, empty, wrong = answer(gate, 2), answer(gate, 3), answer(gate, 4)
    for name, seen in (("no key", missing), ("an empty key", empty)):
        assert seen["status"] == 401, f"{name} must be answered 401, not {seen['status']}"
    assert wrong["status"] == 401, (
        f"a key that is not valid was answered {wrong['status']}: it is 401 (the caller is "
        "not authenticated); 403 is for a valid key without the permission")
    for name, seen in (("no key", missing), ("an unknown key", wrong)):
        challenge = seen["www_authenticate"] or ""
        assert "x-api-key" in challenge.lower(), (
            f"the 401 for {name} needs a WWW-Authenticate header that names the API-key "
            "scheme and the X-API-Key header")
    assert "X-API-Key" in detail(missing), "a missing key's detail should name the header"
    assert detail(missing) != detail(wrong), \
        "say whether the key was missing or not valid: the two details are the same"


@pytest.mark.exercise("12.1")
@pytest.mark.points(1)
def test_a_valid_key_without_the_scope_is_403(gate):
    """12.1 A valid key whose client lacks the route's scope is 403, not 401"""
    for index in (5, 6):
        seen = answer(gate, index)
        assert seen["status"] == 403, (
            f"a valid key without the route's scope was answered {seen['status']}: the caller "
            "is known, so it is 403")


@pytest.mark.exercise("12.1")
@pytest.mark.points(1)
def test_the_key_is_documented_in_the_openapi_schema(gate):
    """12.1 The OpenAPI schema documents an apiKey security scheme in the X-API-Key header"""
    assert any(scheme.get("type") == "apiKey" and scheme.get("in") == "header"
               and scheme.get("name") == "X-API-Key" for scheme in gate["schemes"]), \
        "read the key with fastapi.security.APIKeyHeader(name='X-API-Key') so /docs shows it"


@pytest.mark.exercise("12.1")
@pytest.mark.points(2)
def test_keys_are_compared_as_digests_in_constant_time_against_every_one(gate):
    """12.1 The presented key's SHA-256 digest is compared with hmac.compare_digest, with all"""
    for index, key, what in ((4, STRANGER_KEY, "an unknown key"),
                             (0, KEY["renfield"], "the first client's key")):
        calls = answer(gate, index)["comparisons"]
        assert calls, (f"checking {what} made no hmac.compare_digest call: compare with "
                       "hmac.compare_digest, since == stops at the first differing byte and "
                       "its time tells an attacker how much of a guess was right")
        wanted = digests(key)
        assert all(wanted & set(call) for call in calls), \
            "compare the presented key's SHA-256 digest with the stored digests, not the key"
        assert len(calls) >= len(CLIENTS), (
            f"checking {what} compared it with {len(calls)} of the {len(CLIENTS)} stored "
            "digests: compare with every stored digest, without stopping at a match")


@pytest.mark.exercise("12.1")
@pytest.mark.points(1)
def test_the_ring_keeps_digests_never_keys(probe):
    """12.1 Nothing in the ring holds a key in plain text; it holds their SHA-256 digests"""
    kept = probe.stored(CLIENTS)
    for name, key, _ in CLIENTS:
        assert not any(key in item if isinstance(item, str) else key.encode() in item
                       for item in kept), \
            "the ring keeps a key in plain text: keep only its SHA-256 digest"
        assert digests(key) & set(kept), f"the ring keeps no SHA-256 digest of {name}'s key"


# Exercise 12.2 ------------------------------------------------------------------------------

def expected_decisions(capacity: int, rate: float, steps: list) -> list[dict]:
    """The grader's own token buckets, step by step."""
    buckets: dict[str, tuple[float, float]] = {}
    decisions = []
    for when, key, cost in steps:
        tokens, then = buckets.get(key, (float(capacity), when))
        tokens = min(float(capacity), tokens + (when - then) * rate)
        allowed_ = tokens >= cost
        if allowed_:
            tokens -= cost
        buckets[key] = (tokens, when)
        decisions.append({"allowed": allowed_, "remaining": math.floor(tokens),
                          "retry_after_s": 0 if allowed_ else math.ceil((cost - tokens) / rate)})
    return decisions


def check_script(probe, capacity: int, rate: float, steps: list, what: str) -> list[dict]:
    seen = probe.limiter_script(capacity, rate, steps)
    wanted = expected_decisions(capacity, rate, steps)
    for number, (got, expected) in enumerate(zip(seen, wanted, strict=True), start=1):
        if "raised" in got:
            pytest.fail(f"{what}: take raised {got['raised']} at step {number}", pytrace=False)
        assert got["allowed"] == expected["allowed"], (
            f"{what}: step {number} was {'allowed' if got['allowed'] else 'refused'}, which "
            "it should not have been")
        assert got["remaining"] >= 0, (
            f"{what}: the bucket went negative at step {number}: a refused request costs no "
            "tokens")
        assert got["remaining"] == expected["remaining"], (
            f"{what}: at step {number} the bucket holds the wrong number of tokens")
        if not expected["allowed"]:
            retry, right = got["retry_after_s"], expected["retry_after_s"]
            assert retry < 100 * right, (
                f"{what}: Retry-After is in whole seconds, not milliseconds")
            assert retry == right, (
                f"{what}: at step {number} Retry-After says {retry}: it is the whole seconds "
                f"until the request could pass, rounded up")
        else:
            assert got["retry_after_s"] == 0, f"{what}: an allowed request has Retry-After 0"
    return seen


@pytest.mark.exercise("12.2")
@pytest.mark.points(2)
def test_a_burst_up_to_capacity_then_refusals_per_key(probe):
    """12.2 A full bucket allows `capacity` requests at once, then refuses; keys are separate"""
    steps = [[0.0, "renfield", 1]] * 7 + [[0.0, "mina", 1], [0.1, "renfield", 1]]
    check_script(probe, 5, 0.5, steps, "a burst of seven against a capacity of five")


@pytest.mark.exercise("12.2")
@pytest.mark.points(1)
def test_the_bucket_never_fills_past_its_capacity(probe):
    """12.2 After a long quiet spell the bucket holds `capacity` tokens, not more"""
    steps = [[0.0, "renfield", 1], [600.0, "renfield", 1]] + [[600.0, "renfield", 1]] * 3
    check_script(probe, 3, 1.0, steps, "ten quiet minutes, then a burst: the bucket's "
                                       "capacity caps it")


@pytest.mark.exercise("12.2")
@pytest.mark.points(2)
def test_retry_after_is_whole_seconds_rounded_up(probe):
    """12.2 Retry-After is the seconds until the request could pass, rounded up to a whole one"""
    steps = [[0.0, "a", 1], [0.0, "a", 1], [0.0, "a", 1],  # empty: 2.5 s to one token
             [0.75, "a", 1],  # 0.3 tokens: 1.75 s to go
             [0.75, "a", 2],  # two tokens: 4.25 s to go
             [10.0, "b", 2], [10.0, "b", 1]]  # exactly 2.5 s again
    check_script(probe, 2, 0.4, steps, "a bucket refilling at 0.4 tokens per second")
    check_script(probe, 1, 0.5, [[0.0, "c", 1], [0.0, "c", 1]],
                 "a bucket refilling at 0.5 tokens per second (exactly 2 s to wait)")


@pytest.mark.exercise("12.2")
@pytest.mark.points(2)
def test_refused_requests_cost_nothing(probe):
    """12.2 A client hammering an empty bucket is let in as soon as a token has refilled"""
    steps = ([[0.0, "renfield", 1]] * 2 + [[0.5, "renfield", 1]] * 10
             + [[1.0, "renfield", 1], [1.0, "renfield", 1]])
    check_script(probe, 2, 1.0, steps, "ten refused requests, then one after a second: a "
                                       "refused request costs no tokens")


@pytest.mark.exercise("12.2")
@pytest.mark.points(1)
def test_a_request_may_cost_several_tokens(ch12, probe):
    """12.2 A batch costs one token per image; impossible costs and settings are ValueErrors"""
    steps = [[0.0, "coach", 4], [0.0, "coach", 7], [1.0, "coach", 7], [1.0, "coach", 1]]
    check_script(probe, 10, 1.0, steps, "batches of 4 and 7 images against 10 tokens")
    for capacity, rate in ((0, 1.0), (5, 0.0), (5, -1.0)):
        with pytest.raises(ValueError):
            ch12.RateLimiter(capacity, rate)
    limiter = ch12.RateLimiter(10, 1.0)
    for cost in (0, 11):
        with pytest.raises(ValueError):
            limiter.take("coach", cost)


@pytest.mark.exercise("12.2")
@pytest.mark.points(2)
def test_threads_at_once_never_spend_more_than_the_capacity(probe):
    """12.2 Eight threads taking at once, on a stopped clock, get exactly `capacity` tokens"""
    totals = probe.limiter_threads(400, 8, 200, 6)
    assert all(total <= 400 for total in totals), (
        f"eight threads at once were allowed {max(totals)} requests from a bucket of 400: "
        "two threads spent the same token (read and update the bucket under a lock)")
    assert all(total == 400 for total in totals), \
        "eight threads at once were allowed fewer requests than the bucket held"


# Exercise 12.3 ------------------------------------------------------------------------------

def jpeg(width: int, height: int, progressive: bool = False) -> bytes:
    rng = np.random.default_rng(width * 7 + height)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85, progressive=progressive)
    return buffer.getvalue()


def segments(data: bytes) -> tuple[list[bytes], bytes]:
    """A JPEG's segments up to its first scan, and the rest (the scan and what follows)."""
    found, position = [], 2
    while data[position + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        found.append(data[position:position + 2 + length])
        position += 2 + length
    return found, data[position:]


def tables_first(data: bytes) -> bytes:
    """The same JPEG with its Huffman tables (DHT, 0xC4) moved before its frame header."""
    parts, rest = segments(data)
    tables = [part for part in parts if part[1] == 0xC4]
    others = [part for part in parts if part[1] != 0xC4]
    return b"\xff\xd8" + b"".join(tables + others) + rest


def fake_frame_in_exif(data: bytes) -> bytes:
    """The same JPEG with an EXIF segment, first, that holds the bytes of another frame header
    (16 x 24 pixels), as a thumbnail would."""
    fake = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x18\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    payload = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00" + fake
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def solid(width: int, height: int, fmt: str) -> bytes:
    return encode(np.full((height, width, 3), (200, 30, 40), np.uint8), fmt)


def size_of(probe, data: bytes, what: str) -> tuple[int, int]:
    seen = probe.declared(data)
    assert not seen["pillow"]["open"] and not seen["pillow"]["load"], (
        f"{what}: declared_size asked Pillow; read the header bytes yourself")
    if "raised" in seen:
        pytest.fail(f"{what}: declared_size raised {seen['raised']}", pytrace=False)
    assert isinstance(seen["size"], list), "return (width, height) as a tuple of two ints"
    return tuple(seen["size"])


@pytest.mark.exercise("12.3")
@pytest.mark.points(2)
def test_sizes_are_read_from_png_and_jpeg_headers(probe):
    """12.3 PNG (even a bomb) and JPEG (baseline and progressive) sizes, from the header"""
    cases = [(solid(40, 30, "PNG"), (40, 30), "a 40x30 PNG"),
             (png_claiming(100_000, 70_000), (100_000, 70_000), "a PNG claiming 100000x70000"),
             (jpeg(48, 32), (48, 32), "a 48x32 baseline JPEG (SOF0)")]
    for data, expected, what in cases:
        got = size_of(probe, data, what)
        assert got == expected or got != expected[::-1], (
            f"{what}: return (width, height); a JPEG's frame header holds the height first, "
            "then the width")
        assert got == expected, f"{what}: declared_size gave the wrong size"
    got = size_of(probe, jpeg(48, 32, progressive=True), "a progressive JPEG")
    assert got == (48, 32), ("a 48x32 progressive JPEG (SOF2): every SOFn marker but 0xC4, "
                             "0xC8 and 0xCC is a frame header")


@pytest.mark.exercise("12.3")
@pytest.mark.points(2)
def test_jpeg_segments_are_walked_not_searched(probe):
    """12.3 A frame header is found by walking the segments: not in EXIF, not a DHT"""
    exif = size_of(probe, fake_frame_in_exif(jpeg(56, 40)), "a JPEG with EXIF")
    assert exif == (56, 40), ("a 56x40 JPEG whose EXIF holds another frame header's bytes: "
                              "walk the segments by their lengths instead of searching "
                              "the bytes")
    tables = size_of(probe, tables_first(jpeg(56, 40)), "a JPEG with its tables first")
    assert tables == (56, 40), ("a 56x40 JPEG whose Huffman tables (0xC4) come before its "
                                "frame header: DHT is not a frame header")


@pytest.mark.exercise("12.3")
@pytest.mark.points(1)
def test_other_formats_and_broken_headers_are_value_errors(probe):
    """12.3 Another format, a truncated header, or a scan before any frame: ValueError"""
    no_frame = b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 32
    cases = {"a GIF": encode(np.zeros((8, 8, 3), np.uint8), "GIF"),
             "a WebP": encode(np.zeros((8, 8, 3), np.uint8), "WEBP"),
             "a text file": b"garlic, 3 stakes, holy water",
             "a PNG cut inside its header": solid(40, 30, "PNG")[:20],
             "a JPEG cut before its frame header": jpeg(48, 32)[:20],
             "a JPEG whose scan comes before any frame header": no_frame}
    for what, data in cases.items():
        seen = probe.declared(data)
        assert seen.get("raised") == "ValueError", f"{what}: declared_size should raise " \
            f"ValueError, not {seen.get('raised') or 'return ' + str(seen.get('size'))}"


@pytest.mark.exercise("12.3")
@pytest.mark.points(2)
def test_the_guard_refuses_before_decoding(probe):
    """12.3 Too many declared pixels: 422 too_many_pixels, and not one pixel decoded"""
    for data, what in ((jpeg(300, 200), "a 300x200 JPEG against a limit of 10,000 pixels"),
                       (solid(120, 100, "PNG"), "a 120x100 PNG against a limit of 10,000"),
                       (png_claiming(100_000, 100_000), "a PNG claiming 100000x100000")):
        seen = probe.guarded(data, 10_000)
        if "raised" in seen:
            pytest.fail(f"{what}: read_guarded raised {seen['raised']} instead of a "
                        "ServiceError", pytrace=False)
        assert seen.get("refused"), f"{what}: read_guarded accepted it"
        assert (seen["status"], seen["code"]) == (422, "too_many_pixels"), \
            f"{what}: refuse it with ServiceError(422, 'too_many_pixels', ...)"
        assert seen["decoded"] == 0, (f"{what}: the pixels were decoded before the image was "
                                      "refused: check the declared size first")


@pytest.mark.exercise("12.3")
@pytest.mark.points(1)
def test_the_guard_decodes_what_it_allows(probe):
    """12.3 An image within the limit is decoded to RGB side x side; broken bytes are 422"""
    for fmt in ("PNG", "JPEG"):
        seen = probe.guarded(solid(80, 60, fmt), 10_000, 32)
        assert "pixels" in seen, f"a red 80x60 {fmt} within the limit was not returned as " \
            f"pixels ({seen.get('raised') or seen.get('code') or seen.get('returned')})"
        pixels = seen["pixels"]
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8, \
            "return RGB uint8 pixels of shape (side, side, 3)"
        assert np.abs(pixels.reshape(-1, 3).mean(0) - (200, 30, 40)).max() < 12, \
            f"the red 80x60 {fmt} did not come back red"
    broken = jpeg(48, 32)
    seen = probe.guarded(broken[:len(broken) // 3] + b"\x00" * 64, 10_000)
    assert seen.get("refused") and (seen["status"], seen["code"]) == (422, "undecodable"), \
        "a JPEG whose pixels do not decode: refuse it with ServiceError(422, 'undecodable')"


# Exercise 12.4 ------------------------------------------------------------------------------

NS = "night-watch"
NIGHT_WATCH = Pod(NS, {"app.kubernetes.io/name": "night-watch"},
                  ports={"web": 8080, "metrics": 9100})
ENVOY = Pod("gateway", {"app.kubernetes.io/name": "envoy"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, ports={"dns": 53, "dns-tcp": 53})


@pytest.fixture(scope="module")
def policies(graded_file) -> list[Manifest]:
    return documents(graded_file("ch12_network/night-watch-policy.yaml"))


def reach(policies, source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    return allowed(policies, source, target, port, protocol, namespace=NS)


@pytest.mark.exercise("12.4")
@pytest.mark.points(1)
def test_policies_pass_strict_validation_in_their_namespace(policies):
    """12.4 Every document is a NetworkPolicy of the night-watch namespace, strictly valid"""
    assert policies, "the file holds no manifest"
    for doc in policies:
        assert doc.get("kind") == "NetworkPolicy", f"{doc.get('kind')} is not a NetworkPolicy"
        assert (doc.get("metadata") or {}).get("namespace") == NS, \
            "give every policy metadata.namespace: night-watch"
        error = strict_errors(doc)
        assert error is None, f"kubernetes-validate --strict rejects: {error}"


@pytest.mark.exercise("12.4")
@pytest.mark.points(2)
def test_the_gateway_and_prometheus_reach_their_own_ports(policies):
    """12.4 The gateway reaches port 8080 and Prometheus port 9100, each only its own"""
    assert reach(policies, ENVOY, NIGHT_WATCH, 8080), "the gateway cannot reach port 8080"
    assert reach(policies, PROMETHEUS, NIGHT_WATCH, 9100), \
        "Prometheus cannot scrape port 9100"
    assert not reach(policies, ENVOY, NIGHT_WATCH, 9100), \
        "the gateway can reach the metrics port: give each source its own rule and port"
    assert not reach(policies, PROMETHEUS, NIGHT_WATCH, 8080), \
        "Prometheus can reach the web port 8080: give each source its own rule and port"


@pytest.mark.exercise("12.4")
@pytest.mark.points(2)
def test_nobody_else_gets_in(policies):
    """12.4 No other pod reaches the night watch, nor any pod of the namespace"""
    strangers = {
        "Grafana, in the monitoring namespace": Pod("monitoring",
                                                    {"app.kubernetes.io/name": "grafana"}),
        "another pod of the gateway namespace": Pod("gateway", {"app": "cert-manager"}),
        "a pod labelled prometheus in the night-watch namespace": Pod(
            NS, {"app.kubernetes.io/name": "prometheus"}),
        "a pod labelled envoy in the default namespace": Pod(
            "default", {"app.kubernetes.io/name": "envoy"}),
        "a pod in the default namespace": Pod("default", {"app": "renfield"})}
    for what, pod in strangers.items():
        for port in (8080, 9100):
            assert not reach(policies, pod, NIGHT_WATCH, port), (
                f"{what} can reach port {port}: a peer needs both its namespaceSelector and "
                "its podSelector to match (one entry, not two), and a rule needs its from")
    debug = Pod(NS, {"app": "renfield-debug"}, ports={"http": 8000})
    for source in (ENVOY, PROMETHEUS, Pod("default", {"app": "renfield"}), NIGHT_WATCH):
        assert not reach(policies, source, debug, 8000), (
            "another pod of the night-watch namespace accepts connections: deny by default, "
            "with a policy whose podSelector is {} selects every pod of the namespace")


@pytest.mark.exercise("12.4")
@pytest.mark.points(2)
def test_the_night_watch_may_only_resolve_names(policies):
    """12.4 The night watch reaches kube-dns on port 53 (UDP and TCP), and nothing else"""
    for protocol in ("UDP", "TCP"):
        assert reach(policies, NIGHT_WATCH, DNS, 53, protocol), (
            f"the night watch cannot reach kube-dns on 53/{protocol}: DNS uses UDP, and TCP "
            "for long answers")
    outside = [(DNS, 80, "TCP", "kube-dns on port 80"),
               (Pod("default", {"k8s-app": "kube-dns"}), 53, "UDP",
                "a pod labelled kube-dns outside kube-system"),
               (ENVOY, 8080, "TCP", "the gateway"),
               (Pod("default", {"app": "renfield"}), 443, "TCP", "a pod in default")]
    for target, port, protocol, what in outside:
        assert not reach(policies, NIGHT_WATCH, target, port, protocol), (
            f"the night watch can open a connection to {what}: deny egress by default")
    debug = Pod(NS, {"app": "renfield-debug"})
    for target, port, protocol in ((Pod("default", {"app": "renfield"}), 443, "TCP"),
                                   (DNS, 53, "UDP")):
        assert not reach(policies, debug, target, port, protocol), (
            "another pod of the night-watch namespace can open connections: the default "
            "deny covers egress too")

"""Chapter 12's wrong answers: keys, the token bucket, the upload guard, the network policies."""

from pathlib import Path

from tests.grading.mistakes import Mistake

ROOT = Path(__file__).resolve().parents[3]
POLICY = "ch12_network/night-watch-policy.yaml"

FOUND = """        found = None
        for stored, client, scopes in self._entries:
            if hmac.compare_digest(candidate, stored) and found is None:
                found = (client, scopes)
        return found"""
FRAME_TEST = "if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):"
GATEWAY_RULE = """    - from:  # the gateway's envoy pods: both selectors in one peer
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: gateway}}
          podSelector: {matchLabels: {app.kubernetes.io/name: envoy}}
      ports: [{port: 8080, protocol: TCP}]
"""
PROMETHEUS_PEER = ("        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "
                   "monitoring}}\n"
                   "          podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}\n")
PROMETHEUS_RULE = """    - from:  # Prometheus, on the metrics port only
""" + PROMETHEUS_PEER + """      ports: [{port: 9100, protocol: TCP}]
"""
DEFAULT_DENY = """kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {name: default-deny, namespace: night-watch}
spec:
  podSelector: {}  # every pod of the namespace, in and out
  policyTypes: [Ingress, Egress]
---
"""

SEARCHED = '''
def declared_size(data: bytes) -> tuple[int, int]:
    if data.startswith(PNG_SIGNATURE):
        return struct.unpack(">II", data[16:24])
    if not data.startswith(b"\\xff\\xd8"):
        raise ValueError("not a PNG or JPEG image")
    found = [index for code in range(0xC0, 0xD0) if code not in (0xC4, 0xC8, 0xCC)
             if (index := data.find(bytes([0xFF, code]))) >= 0]
    if not found:
        raise ValueError("the JPEG has no frame header")
    height, width = struct.unpack(">HH", data[min(found) + 5:min(found) + 9])
    return width, height
'''

DECODED_FIRST = '''
def read_guarded(data: bytes, max_pixels: int, side: int = 64) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
        image.load()
    except Exception as error:
        raise ServiceError(422, "undecodable", "the image does not decode") from error
    if image.width * image.height > max_pixels:
        raise ServiceError(422, "too_many_pixels", "too many pixels")
    pixels = image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(pixels, dtype=np.uint8)
'''

MISTAKES = [
    Mistake("equals-instead-of-compare-digest", "12.1", "compare_digest",
            replace=(("if hmac.compare_digest(candidate, stored) and found is None:",
                      "if candidate == stored and found is None:"),)),
    Mistake("stops-at-first-match", "12.1", "every stored digest",
            replace=((FOUND, "        return next(((client, scopes) for stored, client, scopes"
                             " in self._entries\n                     if hmac.compare_digest("
                             "candidate, stored)), None)"),)),
    Mistake("keys-in-plain-text", "12.1", "plain text",
            replace=(("self._entries.append((hashlib.sha256(key.encode()).digest(), client, "
                      "frozenset(scopes)))",
                      "self._entries.append((key.encode(), client, frozenset(scopes)))"),
                     ("candidate = hashlib.sha256(presented.encode()).digest()",
                      "candidate = presented.encode()"))),
    Mistake("forbidden-for-a-wrong-key", "12.1", "401",
            replace=(('raise HTTPException(401, "this API key is not valid", headers=challenge)',
                      'raise HTTPException(403, "this API key is not valid")'),)),
    Mistake("no-www-authenticate", "12.1", "WWW-Authenticate",
            replace=(("""challenge = {"WWW-Authenticate": f'APIKey header="{HEADER}"'}""",
                      "challenge = {}"),)),
    Mistake("copies-the-library", "12.1", "write it yourself",
            append="from vampire_detector.service.auth import ApiKeys\n\n\n"
                   "class KeyRing(ApiKeys):\n    pass\n"),
    Mistake("refills-past-capacity", "12.2", "capacity",
            replace=(("tokens = min(float(self.capacity), tokens + max(0.0, now - then) * "
                      "self.refill_per_s)",
                      "tokens = tokens + max(0.0, now - then) * self.refill_per_s"),)),
    Mistake("retry-after-in-milliseconds", "12.2", "milliseconds",
            replace=(("math.ceil((cost - tokens) / self.refill_per_s)",
                      "math.ceil((cost - tokens) / self.refill_per_s * 1000)"),)),
    Mistake("retry-after-rounded-down", "12.2", "rounded up",
            replace=(("math.ceil((cost - tokens) / self.refill_per_s)",
                      "int((cost - tokens) / self.refill_per_s)"),)),
    Mistake("refusals-spend-tokens", "12.2", "costs no tokens",
            replace=(("            if allowed:\n                tokens -= cost",
                      "            tokens -= cost"),)),
    Mistake("no-lock", "12.2", "lock",
            replace=(("        with self._lock:\n", "        if True:  # threads? it is fast\n"),)),
    Mistake("copies-the-library-bucket", "12.2", "write it yourself",
            append="from vampire_detector.service.auth import TokenBuckets\n\n\n"
                   "class RateLimiter(TokenBuckets):\n    pass\n"),
    Mistake("decodes-before-checking", "12.3", "decoded before", append=DECODED_FIRST),
    Mistake("searches-bytes-for-sof", "12.3", "walk the segments", append=SEARCHED),
    Mistake("only-baseline-sof", "12.3", "progressive",
            replace=((FRAME_TEST, "if marker == 0xC0:"),)),
    Mistake("jpeg-width-height-swapped", "12.3", "height first",
            replace=(("height, width = struct.unpack", "width, height = struct.unpack"),)),
    Mistake("dht-taken-for-a-frame", "12.3", "DHT",
            replace=((FRAME_TEST, "if 0xC0 <= marker <= 0xCF:"),)),
    Mistake("copies-the-library-guard", "12.3", "write it yourself",
            append="from vampire_detector.service.uploads import open_portrait\n\n\n"
                   "def read_guarded(data, max_pixels, side=64):\n"
                   "    return open_portrait(data, None, max_pixels)\n"),
    Mistake("allows-all-ingress", "12.4", "needs its from", file=POLICY,
            replace=((GATEWAY_RULE, "    - ports: [{port: 8080, protocol: TCP}]\n"),)),
    Mistake("namespace-or-pod", "12.4", "both", file=POLICY,
            replace=((PROMETHEUS_PEER, PROMETHEUS_PEER.replace("          podSelector",
                                                               "        - podSelector")),)),
    Mistake("one-rule-for-both-ports", "12.4", "its own rule", file=POLICY,
            replace=((GATEWAY_RULE + PROMETHEUS_RULE,
                      GATEWAY_RULE.replace("      ports: [{port: 8080, protocol: TCP}]",
                                           PROMETHEUS_PEER.rstrip("\n") + "\n      ports: "
                                           "[{port: 8080, protocol: TCP}, "
                                           "{port: 9100, protocol: TCP}]")),)),
    Mistake("no-default-deny", "12.4", "deny by default", file=POLICY,
            replace=((DEFAULT_DENY, ""),)),
    Mistake("egress-left-open", "12.4", "egress", file=POLICY,
            replace=(("  policyTypes: [Ingress, Egress]", "  policyTypes: [Ingress]"),)),
    Mistake("dns-over-udp-only", "12.4", "TCP", file=POLICY,
            replace=((", {port: 53, protocol: TCP}]", "]"),)),
    Mistake("copies-the-deploy-file", "12.4", "namespace", file=POLICY,
            replace=(((ROOT / "solutions" / POLICY).read_text(),
                      (ROOT / "deploy/k8s/base/networkpolicy.yaml").read_text()),)),
]

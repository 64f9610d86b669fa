"""Chapter 9's wrong answers: the night watch's Deployment and its autoscaler."""

from tests.grading.mistakes import Mistake

WATCH = "ch09_kubernetes/night-watch.yaml"
HPA = "ch09_kubernetes/hpa.yaml"

MISTAKES = [
    Mistake("startup-probe-budget-too-short", "9.1", "still loading", file=WATCH,
            replace=(("failureThreshold: 40", "failureThreshold: 3"),)),
    Mistake("liveness-on-ready", "9.1", "wrong one of the app's probe endpoints", file=WATCH,
            replace=(("livenessProbe: {httpGet: {path: /health,",
                      "livenessProbe: {httpGet: {path: /ready,"),)),
    Mistake("missing-resource-limits", "9.1", "resources.limits", file=WATCH,
            replace=(("            limits: {cpu: \"2\", memory: 1536Mi}\n", ""),)),
    Mistake("memory-request-above-limit", "9.1", "memory request above its limit", file=WATCH,
            replace=(("requests: {cpu: \"2\", memory: 768Mi}",
                      "requests: {cpu: \"2\", memory: 2Gi}"),)),
    Mistake("threads-not-matching-limit", "9.1", "as many threads", file=WATCH,
            replace=(('- {name: VAMPIRE_THREADS, value: "2"}',
                      '- {name: VAMPIRE_THREADS, value: "8"}'),)),
    Mistake("runs-as-root", "9.1", "runAsNonRoot", file=WATCH,
            replace=(("securityContext: {runAsNonRoot: true, runAsUser: 20001}",
                      "securityContext: {runAsUser: 20001}"),)),
    Mistake("autoscaling-v1", "9.2", "autoscaling/v2", file=HPA,
            replace=(("apiVersion: autoscaling/v2", "apiVersion: autoscaling/v1"),)),
    Mistake("window-in-minutes", "9.2", "seconds", file=HPA,
            replace=(("stabilizationWindowSeconds: 300", "stabilizationWindowSeconds: 5"),)),
    Mistake("lull-on-scale-up", "9.2", "scale-down", file=HPA,
            replace=(("scaleDown: {stabilizationWindowSeconds: 300}",
                      "scaleUp: {stabilizationWindowSeconds: 300}"),)),
    Mistake("targets-the-service", "9.2", "wrong workload", file=HPA,
            replace=(("{apiVersion: apps/v1, kind: Deployment, name: night-watch}",
                      "{apiVersion: v1, kind: Service, name: night-watch}"),)),
    Mistake("one-replica-minimum", "9.2", "replica bounds", file=HPA,
            replace=(("minReplicas: 2", "minReplicas: 1"),)),
]

"""Chapter 7's wrong answers: the night-shift Dockerfile and the gatehouse's .dockerignore."""

from pathlib import Path

from tests.grading.mistakes import Mistake

DOCKERFILE = "ch07_docker/Dockerfile"
IGNORE = "ch07_docker/gatehouse/.dockerignore"
HEALTHCHECK = ('HEALTHCHECK --interval=15s --timeout=2s --start-period=20s --retries=2 CMD \\\n'
               '    ["python", "-c", "from urllib.request import urlopen; '
               "urlopen('http://localhost:8080/health')\"]")
CMD = ('CMD ["uvicorn", "vampire_detector.service.app:create_app", "--factory", "--workers", '
       '"1", \\\n     "--host", "0.0.0.0", "--port", "8080"]')
ALLOWLIST = ("*\n!requirements.lock\n!wheels/\n!gatehouse/\n!models/vampirenet.onnx\n"
             "gatehouse/config/secrets.toml\n**/__pycache__\n**/*.py[cod]\n")
# The course repository's own file, which fits the course's layout and not the gatehouse's.
REPOSITORY_DOCKERIGNORE = (Path(__file__).resolve().parents[3] / ".dockerignore").read_text()

MISTAKES = [
    Mistake("healthcheck-with-curl", "7.1", "curl", file=DOCKERFILE,
            replace=((HEALTHCHECK, "HEALTHCHECK --interval=15s --timeout=2s CMD "
                                   "curl -f http://localhost:8080/health || exit 1"),)),
    Mistake("copies-the-whole-context", "7.1", "whole build context", file=DOCKERFILE,
            replace=(("USER 20001\n", "COPY . /srv/\nUSER 20001\n"),)),
    Mistake("runs-as-root", "7.1", "USER", file=DOCKERFILE,
            replace=(("USER 20001\n", ""),)),
    Mistake("unpinned-base", "7.1", "pin the base image", file=DOCKERFILE,
            replace=(("ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm",
                      "ARG PYTHON_IMAGE=python:3.11-slim"),)),
    Mistake("shell-form-cmd", "7.1", "JSON", file=DOCKERFILE,
            replace=((CMD, "CMD uvicorn vampire_detector.service.app:create_app --factory "
                           "--workers 1 --host 0.0.0.0 --port 8080"),)),
    Mistake("threads-not-matching-cpus", "7.1", "two threads", file=DOCKERFILE,
            replace=(("ENV OMP_NUM_THREADS=2 VAMPIRE_THREADS=2",
                      "ENV OMP_NUM_THREADS=8 VAMPIRE_THREADS=8"),)),
    Mistake("human-readable-size", "7.1", "did not serve", file=DOCKERFILE,
            replace=(("PYTHONPATH=/srv\n", "PYTHONPATH=/srv VAMPIRE_MAX_UPLOAD_BYTES=2MB\n"),)),
    Mistake("copies-the-library", "7.2", "would lack", file=IGNORE,
            replace=((ALLOWLIST, REPOSITORY_DOCKERIGNORE),)),
    Mistake("denylist", "7.2", "allowlist", file=IGNORE,
            replace=((ALLOWLIST, ".git\n.venv\n.env\nportraits/\nmodels/checkpoints/\n"
                                 "notebooks/\ntests/\ngatehouse/config/secrets.toml\n"
                                 "**/__pycache__\n**/*.py[cod]\n"),)),
    Mistake("whole-models-folder", "7.2", "data the image never uses", file=IGNORE,
            replace=(("!models/vampirenet.onnx\n", "!models/\n"),)),
    Mistake("secret-shut-out-too-early", "7.2", "secrets", file=IGNORE,
            replace=((ALLOWLIST, "gatehouse/config/secrets.toml\n*\n!requirements.lock\n"
                                 "!wheels/\n!gatehouse/\n!models/vampirenet.onnx\n"
                                 "**/__pycache__\n**/*.py[cod]\n"),)),
    Mistake("bytecode-only-at-the-top", "7.2", "Python regenerates", file=IGNORE,
            replace=(("**/__pycache__\n**/*.py[cod]\n", "__pycache__\n*.pyc\n"),)),
    Mistake("forgets-the-mounted-files", "7.2", "mount", file=IGNORE,
            replace=(("!requirements.lock\n!wheels/\n", ""),)),
]

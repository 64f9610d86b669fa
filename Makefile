# The course's commands. `make book` and `make test` create the environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := _build/notebooks
CHAPTERS := $(wildcard book/*.md)
# nbval keeps the outputs it ran for the book build (the student release has no tools/)
RECORD := $(if $(wildcard tools/nbval_record.py),-p tools.nbval_record --record-outputs)

.PHONY: help env book test lint unit grade stubs mistakes student-check sync notebooks book-cache browser \
	notebooks-sync weights-cache model-file images azureml-env serving-env exercises weights screenshots serve bench lock clean web-demo

help:
	@echo "make book       build the HTML book into _build/html (needs npm for the in-browser demo)"
	@echo "make test       run every check that CI runs, the book build and a browser check included"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make student-check  the student edition's README commands, on its stubs and on the answers"
	@echo "make notebooks-sync  rewrite the chapters' Colab notebooks (book/*.ipynb)"
	@echo "make weights    retrain the committed VampireNet weights"
	@echo "make lock       re-resolve requirements.txt into constraints.txt (every package pinned)"
	@echo "make screenshots  retake the README's screenshots of the book"
	@echo "make bench      the capstone's performance ledger and 10,000-request soak (_build/bench/)"
	@echo "make serve      run the detection service on http://127.0.0.1:8000 (docs at /docs)"
	@echo "make images     build the serving, Lambda and CUDA images and probe them"
	@echo "make azureml-env  Azure's inference server for Chapter 14, in _build/azureml-env"
	@echo "make serving-env  the serving image's requirements alone, in _build/serving-env"

env: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10 or newer is needed; run e.g. make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

book: $(STAMP) weights-cache web-demo
	$(BIN)/jupyter-book build . --warningiserror --keep-going

# The edge chapter's in-browser detector: onnxruntime-web from npm (pinned by web/package-lock.json;
# npm keeps its downloads in ~/.npm, which CI may cache), then the model, portraits and runtime
# files in web/site/edge-demo/, which the book ships beside its pages.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the in-browser demo: apt-get install npm"; exit 1; }
	npm ci --prefix web --ignore-scripts --no-audit --no-fund

web-demo: $(STAMP) web/node_modules/.package-lock.json
	$(BIN)/python web/build_demo.py

test: lint weights-cache unit images grade stubs mistakes student-check sync notebooks book-cache book browser

# The chapters' code is checked too, for names that are unused or undefined across a notebook.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff check --isolated --select F401,F811,F821 --output-format concise book/*.ipynb
	$(BIN)/lint-imports

# The project's own tests, in UNIT_WORKERS processes (pytest-xdist): most of them wait on servers
# and subprocesses, so two processes finish sooner even on two cores.
UNIT_WORKERS ?= 2
unit: $(STAMP) weights-cache model-file azureml-env serving-env
	$(BIN)/python -m pytest tests --ignore=tests/browser --ignore=tests/grading/test_mistakes.py \
		-n $(UNIT_WORKERS)

# Every documented wrong answer (tests/grading/mistakes/) graded: each must lose points, with
# feedback that says what is wrong, without waiting for a timeout. One grading run per round.
mistakes: $(STAMP) weights-cache
	$(BIN)/python -m pytest tests/grading/test_mistakes.py -n $(UNIT_WORKERS) -p no:cacheprovider

grade: $(STAMP)
	$(BIN)/python -m pytest autograder --impl=solutions

# The stubs must score 0 with every test failing: pytest's exit code 1 ("tests failed") is the
# expected outcome here, anything else is an error.
stubs: $(STAMP)
	@mkdir -p _build
	$(BIN)/python -m pytest autograder --impl=exercises --gradescope _build/stubs.json -q \
		> _build/stubs.log || [ $$? -eq 1 ] || { cat _build/stubs.log; exit 1; }
	$(BIN)/python tools/check_stubs.py _build/stubs.json

# The student edition (tools/student_release.py), built twice and used as its README says: its
# stubs must score 0 and the reference answers pasted in full marks. It reuses this .venv.
student-check: $(STAMP)
	$(BIN)/python tools/check_student_edition.py --venv $(VENV)

sync: $(STAMP)
	$(BIN)/python tools/make_exercises.py --check
	$(BIN)/python tools/sync_notebooks.py --check

# Every chapter, converted from its MyST source, must run without error (nbval, lax: outputs
# are not compared). VAMPIRE_QUICK=1 cuts benchmark repetitions; a plain `make book` runs them in
# full. The outputs are kept (tools/nbval_record.py) for the book: see book-cache. jupytext's
# `--to PREFIX//ipynb` writes beside each chapter's folder, so ../ lands the copies in $(NOTEBOOKS).
# nbval kills its kernels, so their scratch folders (paths.scratch_dir) go with a TMPDIR of their own.
notebooks: $(STAMP) weights-cache azureml-env
	@rm -rf $(NOTEBOOKS) && mkdir -p $(NOTEBOOKS)
	$(BIN)/jupytext --quiet --from myst --to ../$(NOTEBOOKS)//ipynb $(CHAPTERS)
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	  TMPDIR=$$scratch VAMPIRE_QUICK=1 $(BIN)/python -m pytest --nbval-lax $(NOTEBOOKS) \
	  -p no:cacheprovider $(RECORD)

# The executions of `make notebooks` go into the book's cache, so that `make test` runs every
# chapter once: its book shows those quick runs. A chapter the cache already holds keeps its
# earlier execution; `make clean book` runs every chapter in full.
book-cache: $(STAMP)
	$(BIN)/python tools/seed_book_cache.py $(NOTEBOOKS)

# The built book in headless Chromium: pages, outputs, search, links, launch buttons.
browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

exercises: $(STAMP)
	$(BIN)/python tools/make_exercises.py

notebooks-sync: $(STAMP)
	$(BIN)/python tools/sync_notebooks.py

# The capstone's measurements: about three minutes on two cores.
bench: $(STAMP) weights-cache
	$(BIN)/python benchmarks/bench_ledger.py
	$(BIN)/python benchmarks/bench_soak.py

# The production ResNet-18 is trained once per machine (about 90 s on two cores) into the weights
# cache, as an explicit step: no timed test or notebook cell ever trains it. A file lock makes
# parallel callers train it once.
weights-cache: $(STAMP)
	$(BIN)/python -m vampire_detector.train --arch resnet18 --if-missing

# The model file the images are built from: exported once from the committed weights, outside
# any image (so that no image needs PyTorch), and named by its SHA-256 in the image tags.
MODEL_FILE := models/vampirenet.onnx
model-file: $(MODEL_FILE)
$(MODEL_FILE): $(STAMP) vampire_detector/weights/vampirenet.pt vampire_detector/onnx_export.py \
		vampire_detector/model.py
	@mkdir -p $(dir $@)
	$(BIN)/python -c "from vampire_detector.onnx_export import export_trained; \
		export_trained('vampirenet', '$@')"
	sha256sum $@ > $@.sha256

# Azure's inference server for Chapter 14's scoring script, in a virtual environment of its own:
# it pins pydantic and OpenTelemetry below the course's versions (deploy/azureml/requirements.txt).
AZUREML_ENV := _build/azureml-env
azureml-env: $(AZUREML_ENV)/.installed
$(AZUREML_ENV)/.installed: deploy/azureml/requirements.txt
	rm -rf $(AZUREML_ENV)
	$(PYTHON) -m venv $(AZUREML_ENV)
	$(AZUREML_ENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r deploy/azureml/requirements.txt
	touch $@

# The serving image's Python environment outside the image: deploy/requirements-serve.txt alone,
# no PyTorch. tests/deploy/test_serving_env.py serves from it, so a package the image lacks
# shows up in `make unit` too, and on a machine with no image builder.
SERVING_ENV := _build/serving-env
serving-env: $(SERVING_ENV)/.installed
$(SERVING_ENV)/.installed: deploy/requirements-serve.txt
	rm -rf $(SERVING_ENV)
	$(PYTHON) -m venv $(SERVING_ENV)
	$(SERVING_ENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r deploy/requirements-serve.txt
	touch $@

# The serving, Lambda and CUDA images, built for real (Docker, or buildah where there is no engine)
# from the exported model file, then started and probed: see tools/build_images.py.
images: $(STAMP) model-file
	$(BIN)/python tools/build_images.py --json _build/images.json

weights: $(STAMP)
	$(BIN)/python -m vampire_detector.train

screenshots: book
	$(BIN)/python tools/screenshots.py

# The Chapter 6 service on the committed VampireNet, exported to ONNX at start; VAMPIRE_* variables change its settings.
serve: $(STAMP)
	$(BIN)/uvicorn --factory vampire_detector.torch_serving:create_app --host 127.0.0.1 --port 8000

# requirements.txt names what the course uses; constraints.txt pins everything those pull in, so
# that a fresh clone installs the environment CI tested, not whatever PyPI released since.
lock:
	rm -rf _build/lock && $(PYTHON) -m venv _build/lock
	_build/lock/bin/python -m pip install --quiet -r requirements.txt
	{ echo "# Every package of the course's environment, pinned: written by 'make lock'."; \
	  _build/lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf _build

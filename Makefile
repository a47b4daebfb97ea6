# Two entry points a fresh machine needs: `make demo` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch with a matching torchvision from the local wheel mirror (a bare `torch` requirement would pull
# whatever CUDA build PyPI has). torchvision is needed by transformers' image processors (Florence-2,
# SAM-2, depth) and by RAFT; PyPI's torchvision does not load beside the CPU-only torch 2.13 wheel, so the
# pair is 2.14.1 (a CUDA build that runs on the CPU).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Debian packages the tests use: a headless browser for the web pages, the fonts text_modification draws
# with (WenQuanYi Micro Hei for Chinese, Liberation for Latin), and OpenCV's sample data (real photos, text
# images and videos).
SYSTEM_PACKAGES ?= chromium fonts-wqy-microhei fonts-liberation fonts-dejavu-core opencv-doc
# Installed without their dependencies: each names an OpenCV distribution (opencv-python-headless,
# opencv-contrib-python) that would overwrite opencv-contrib-python-headless's cv2/. The `ocr` and `faces`
# extras list what they really need. MediaPipe's model files ship in annotators/mediapipe/.
NO_DEPS_PACKAGES ?= rapidocr==3.10.0 mediapipe==1.2.3 ai-edge-litert==2.3.0

.PHONY: setup system-deps demo test lint

# Installs what is missing; needs root (CI runs as root) or the packages already present.
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[models,dev,report,ocr,faces]'
	$(BIN)/pip install -q --no-deps $(NO_DEPS_PACKAGES)
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/step1x-data run subject_removal --source examples/photos --out runs/demo

test: setup system-deps
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

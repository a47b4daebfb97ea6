"""MediaPipe's pretrained model files: where they are, and how they get there (once, at setup).

mediapipe 0.10.21 was the last wheel to ship its .tflite models inside the package; later releases (the
Tasks API that runs on a numpy-2 stack) download them at run time. The wheel is Apache-2.0 and its model
files are fixed, so setup takes the few this project uses out of that wheel (`pip download`, a package
registry, never a model hub) and checks each against its SHA-256. At run time nothing is downloaded: a
missing file is a one-line error naming the command that puts it there.

Two runtimes read them: face detection and selfie segmentation run under mediapipe's Tasks API (their
files carry the metadata it needs); the face mesh and the pose landmarks run on the LiteRT interpreter
(ai-edge-litert), because the Tasks landmarker graphs expect the newer model bundles and reject or misread
these files (tried: FaceLandmarker misplaces every point, PoseLandmarker refuses the input).

usage: python -m annotators.mediapipe_models fetch [--dir DIR]     (make setup runs it)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from annotators.registry import PluginUnavailable

WHEEL = "mediapipe==0.10.21"
# The wheel is only an archive of model files here: pinning its platform lets any Python fetch it.
WHEEL_PLATFORM = ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--only-binary=:all:")
ENV = "STEP1X_MEDIAPIPE_MODELS"

# name -> (path inside the wheel, sha256)
MODEL_FILES: dict[str, tuple[str, str]] = {
    "face_detection_short_range.tflite": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "face_landmark.tflite": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
    "selfie_segmentation.tflite": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    ),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
FETCH_COMMAND = "python -m annotators.mediapipe_models fetch"
# (import name, what installs it). Both are installed without their dependencies: each names an OpenCV
# distribution that would overwrite opencv-contrib-python-headless's cv2/ (the Makefile's NO_DEPS_PACKAGES).
RUNTIMES = {
    "mediapipe": "pip install 'step1x-data[faces]' && pip install --no-deps mediapipe==1.2.3",
    "ai_edge_litert": "pip install 'step1x-data[faces]' && pip install --no-deps ai-edge-litert==2.3.0",
}


def models_folder() -> Path:
    """Where the model files live: $STEP1X_MEDIAPIPE_MODELS, else beside the environment's packages."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "share" / "step1x-data" / "mediapipe-0.10.21"


def model_file(name: str) -> str:
    """The path of one model file; PluginUnavailable (one line, with the fix) when it is not there."""
    if name not in MODEL_FILES:
        raise ValueError(f"unknown MediaPipe model {name!r}; known: {sorted(MODEL_FILES)}")
    path = models_folder() / name
    if not path.is_file():
        raise PluginUnavailable(f"MediaPipe model {path} is missing: run `{FETCH_COMMAND}` (make setup does)")
    return str(path)


def check_runtime(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        message = f"the MediaPipe models need the Python package {module!r}: {RUNTIMES[module]}"
        raise PluginUnavailable(message)


def close_before_exit(task: object) -> None:
    """Close a MediaPipe Tasks object while the interpreter can still run it.

    Its close() runs on a thread pool; at exit that pool is shut down before atexit handlers run, so a plain
    atexit (or the object's own __del__) fails noisily. threading's exit hooks run before the pool's own
    (they are called last-registered first), so the task closes cleanly there.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(task.close)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(folder: Path) -> list[Path]:
    """Take the model files out of the mediapipe 0.10.21 wheel into ``folder`` (skipping good ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {n: v for n, v in MODEL_FILES.items() if not _is_good(folder / n, v[1])}
    if wanted:
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    *WHEEL_PLATFORM,
                    WHEEL,
                    "-d",
                    scratch,
                ],
                check=True,
            )
            (wheel,) = Path(scratch).glob("mediapipe-*.whl")
            with zipfile.ZipFile(wheel) as archive:
                for name, (member, digest) in wanted.items():
                    data = archive.read(member)
                    if _sha256(data) != digest:
                        raise RuntimeError(f"{member} in {wheel.name} has an unexpected SHA-256")
                    partial = folder / (name + ".partial")
                    partial.write_bytes(data)
                    partial.rename(folder / name)
    return [folder / name for name in MODEL_FILES]


def _is_good(path: Path, digest: str) -> bool:
    return path.is_file() and _sha256(path.read_bytes()) == digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "where"])
    parser.add_argument("--dir", type=Path, default=None, help=f"default: ${ENV} or {models_folder()}")
    args = parser.parse_args()
    folder = args.dir or models_folder()
    if args.command == "fetch":
        for path in fetch(folder):
            print(path)
    else:
        print(folder)


if __name__ == "__main__":
    main()

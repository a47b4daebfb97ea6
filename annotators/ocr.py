"""The `ocr` tool: text lines, their words and where they are.

Offline backend: RapidOCR running the PP-OCR (PaddleOCR) detection, orientation and recognition models that
ship inside its wheel, on onnxruntime. Models backend: the same engine with the larger PaddleOCR server
models from the models folder (``PP-OCRv5_server_det`` and ``PP-OCRv5_server_rec``, each holding the
model exported to ONNX with paddle2onnx; the recogniser's character list travels in its metadata), on the
GPU when onnxruntime has CUDA. PaddleOCR's own package is not used: it is 1.4 GB with paddlepaddle and
fetches its models from a hub at run time.

rapidocr and onnxruntime are installed without their dependencies (rapidocr names an OpenCV distribution
that would overwrite opencv-contrib-python-headless): the `ocr` extra lists what they really need.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os

import cv2
import numpy as np

from annotators.registry import Plugin, PluginUnavailable, Resources
from tasks.tools import TextLine

BACKENDS = {"offline": "annotators.ocr:RapidOCRText", "models": "annotators.ocr:PaddleServerOCR"}
INSTALL = "pip install 'step1x-data[ocr]' && pip install --no-deps rapidocr==3.10.0"


def _quad(points: object) -> np.ndarray:
    return np.asarray(points, np.float32).reshape(4, 2)


class RapidOCRText(Plugin):
    name = "rapidocr_ppocr"
    resources = Resources(num_cpus=1.0)
    version = "rapidocr-3-ppocr-bundled"

    def __init__(self, models_dir: str | None = None, min_score: float = 0.5, threads: int = -1) -> None:
        super().__init__(models_dir)
        from rapidocr import RapidOCR

        params = {"Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": threads}
        self.engine = RapidOCR(params={**params, **self._model_params()})
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self.min_score = min_score

    def _model_params(self) -> dict[str, object]:
        return {}

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        for module in ("rapidocr", "onnxruntime"):
            if importlib.util.find_spec(module) is None:
                raise PluginUnavailable(f"{cls.name} ({cls.backend} backend) needs {module!r}: {INSTALL}")
        super().check(models_dir)

    def __call__(self, image: np.ndarray) -> list[TextLine]:
        # Every switch is passed: rapidocr keeps the last call's switches for the next call.
        result = self.engine(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
            use_det=True,
            use_cls=True,
            use_rec=True,
            return_word_box=True,
        )
        if result.txts is None:
            return []
        lines = []
        for quad, text, score, words in zip(
            result.boxes, result.txts, result.scores, result.word_results, strict=True
        ):
            if score < self.min_score or not text.strip():
                continue
            lines.append(
                TextLine(
                    quad=_quad(quad),
                    text=text,
                    score=float(score),
                    words=[TextLine(_quad(box), word, float(s)) for word, s, box in words if box is not None],
                )
            )
        return lines

    def read_line(self, image: np.ndarray) -> tuple[str, float]:
        """Recognition alone on an upright image of one line of text: its text and confidence."""
        result = self.engine(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
            use_det=False,
            use_cls=False,
            use_rec=True,
            return_word_box=False,
        )
        if not result.txts:
            return "", 0.0
        return "".join(result.txts), float(min(result.scores))


class PaddleServerOCR(RapidOCRText):
    name = "rapidocr_ppocr_server"
    version = "rapidocr-3-ppocrv5-server"
    backend = "models"
    resources = Resources(num_cpus=1.0, num_gpus=0.1, memory_gb=2.0)
    models = ("PP-OCRv5_server_det", "PP-OCRv5_server_rec")

    def _model_params(self) -> dict[str, object]:
        import onnxruntime

        params: dict[str, object] = {}
        for task, folder in (("Det", "PP-OCRv5_server_det"), ("Rec", "PP-OCRv5_server_rec")):
            path = self.model_path(folder)
            found = sorted(glob.glob(os.path.join(path, "*.onnx")))
            if not found:
                raise PluginUnavailable(f"{path} holds no .onnx model (export it with paddle2onnx)")
            params[f"{task}.model_path"] = found[0]
            keys = sorted(glob.glob(os.path.join(path, "*.txt")))
            if task == "Rec" and keys:  # a character list beside the model, when its metadata has none
                params["Rec.rec_keys_path"] = keys[0]
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            params.update({"EngineConfig.onnxruntime.use_cuda": True})
        return params

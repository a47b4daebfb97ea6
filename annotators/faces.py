"""The `faces` tool: faces and their 468-point mesh, from MediaPipe's models (offline, weights in a wheel).

MediaPipe's short-range face detector (Tasks API) finds each face and its eyes; the face mesh model (LiteRT)
then reads the face in a square crop 1.5 times the detected box, turned so the eyes are level, as
MediaPipe's own face-mesh graph does. A detection whose mesh says "no face" (its presence score) is dropped.
The short-range detector is made for faces that fill a good part of the picture (portraits, selfies).
"""

from __future__ import annotations

import numpy as np

from annotators import mediapipe_models
from annotators.litert import LiteRTModel, sigmoid, square_crop, to_image
from annotators.mediapipe_models import close_before_exit
from annotators.registry import Plugin, Resources
from tasks.tools import Face

BACKENDS = {"offline": "annotators.faces:MediaPipeFaces"}


class MediaPipeFaces(Plugin):
    name = "mediapipe_face_mesh"
    version = "mediapipe-0.10.21-models"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None, min_score: float = 0.5, max_faces: int = 8) -> None:
        super().__init__(models_dir)
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(
                model_asset_path=mediapipe_models.model_file("face_detection_short_range.tflite")
            ),
            min_detection_confidence=min_score,
        )
        self.detector = vision.FaceDetector.create_from_options(options)
        close_before_exit(self.detector)
        self.mesh = LiteRTModel(mediapipe_models.model_file("face_landmark.tflite"))
        self.max_faces = max_faces

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        mediapipe_models.check_runtime("mediapipe")
        mediapipe_models.check_runtime("ai_edge_litert")
        mediapipe_models.model_file("face_detection_short_range.tflite")
        mediapipe_models.model_file("face_landmark.tflite")

    def __call__(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        faces = []
        for detection in self.detector.detect(frame).detections[: self.max_faces]:
            box = detection.bounding_box
            # Keypoints 0 and 1: the eye on the image's left, the eye on its right.
            left_eye, right_eye = ((k.x * width, k.y * height) for k in detection.keypoints[:2])
            angle = float(np.degrees(np.arctan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])))
            centre = (box.origin_x + box.width / 2, box.origin_y + box.height / 2)
            crop, back = square_crop(image, centre, 1.5 * max(box.width, box.height), angle, self.mesh.size)
            points, presence = self.mesh(crop)
            if float(sigmoid(presence.ravel()[0])) < 0.5:
                continue
            landmarks = to_image(points.reshape(468, 3)[:, :2], back)
            x0, y0 = np.floor(landmarks.min(axis=0)).astype(int)
            x1, y1 = np.ceil(landmarks.max(axis=0)).astype(int) + 1
            faces.append(
                Face(
                    box=(max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))),
                    score=float(detection.categories[0].score),
                    landmarks=landmarks,
                )
            )
        return faces

"""MediaPipe's models on real photos: face detection + mesh, person segmentation, body pose; and the
model files' setup (present, checked by hash, a one-line error when missing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PHOTOS, rgb

from annotators import mediapipe_models
from annotators.registry import PluginUnavailable
from tasks import face_regions as fr

# The astronaut's face, drawn by hand on examples/photos/astronaut.png (x0, y0, x1, y1).
ASTRONAUT_FACE = (180, 70, 275, 185)


def test_face_mesh_lands_on_the_face(faces) -> None:  # noqa: ANN001
    found = faces(rgb(PHOTOS / "astronaut.png"))
    assert len(found) == 1
    face = found[0]
    assert face.landmarks.shape == (468, 2) and face.score > 0.8
    x0, y0, x1, y1 = ASTRONAUT_FACE
    inside = (face.landmarks[:, 0] >= x0) & (face.landmarks[:, 0] < x1)
    inside &= (face.landmarks[:, 1] >= y0) & (face.landmarks[:, 1] < y1)
    assert inside.mean() > 0.97
    # The mesh's anatomy: eyes above the nose tip above the mouth, the person's right eye on the image left.
    right_eye, left_eye = (
        face.landmarks[list(fr.RIGHT_EYE)].mean(0),
        face.landmarks[list(fr.LEFT_EYE)].mean(0),
    )
    assert right_eye[0] < face.landmarks[fr.NOSE_TIP, 0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < face.landmarks[fr.NOSE_TIP, 1] < face.landmarks[13, 1]
    assert 0.2 < fr.eye_openness(face.landmarks) < 0.5  # open eyes
    assert fr.mouth_openness(face.landmarks) > 0.06  # she smiles with her teeth showing


def test_no_face_in_a_photo_without_people(faces) -> None:  # noqa: ANN001
    assert faces(rgb(PHOTOS / "coffee.png")) == []


def test_person_segmentation_and_pose(persons, pose) -> None:  # noqa: ANN001
    image = rgb(PHOTOS / "astronaut.png")
    mask = persons(image)
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    x0, y0, x1, y1 = ASTRONAUT_FACE
    assert (mask[y0:y1, x0:x1] > 0.5).mean() > 0.8  # her face is person
    assert (mask[:60, 420:] > 0.5).mean() < 0.1  # the backdrop at the top right is not
    assert 0.3 < (mask > 0.5).mean() < 0.8
    coffee = persons(rgb(PHOTOS / "coffee.png"))
    assert (coffee > 0.5).mean() < 0.5 * (mask > 0.5).mean()  # a selfie model, not a person detector
    body = pose(image, (0, 15, 512, 512))
    assert body is not None and body.landmarks.shape == (33, 2)
    nose = body.landmarks[0]
    assert x0 <= nose[0] < x1 and y0 <= nose[1] < y1 and body.visibility[0] > 0.5


def test_missing_model_files_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mediapipe_models, "MODEL_FOLDER", tmp_path / "nowhere")
    with pytest.raises(PluginUnavailable) as missing:
        mediapipe_models.model_file("face_landmark.tflite")
    message = str(missing.value)
    assert "\n" not in message and "face_landmark.tflite" in message and "reinstall" in message
    from annotators.faces import MediaPipeFaces

    with pytest.raises(PluginUnavailable):
        MediaPipeFaces.check(None)


def test_the_shipped_model_files_are_the_wheels_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(mediapipe_models.is_intact(name) for name in mediapipe_models.MODEL_FILES)
    for name in mediapipe_models.MODEL_FILES:
        shutil.copy(mediapipe_models.model_file(name), tmp_path / name)
    (tmp_path / "face_landmark.tflite").write_bytes(b"not a model")
    monkeypatch.setattr(mediapipe_models, "MODEL_FOLDER", tmp_path)
    assert not mediapipe_models.is_intact("face_landmark.tflite")
    assert mediapipe_models.is_intact("pose_landmark_full.tflite")

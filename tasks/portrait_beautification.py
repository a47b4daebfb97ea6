"""portrait_beautification (GEdit-Bench `ps_human`): retouching one person's face.

The face mesh (the `faces` tool) places every operation (tasks.portrait_operations): skin smoothing that
keeps the pores at low strength, blemish removal, eye brightening, face slimming by a landmark-guided warp,
teeth whitening, and a background blur behind the person (the `persons` tool). Where the reverse is a
sensible request, the pair is also made backwards, and then the untouched photo is the target: a face made
fuller, a background made sharp, and blemish removal itself (spots are added to the photo, whose clean face
is the target).

Identity is checked on every pair: the mesh is found again on the edited face, and the eyes, nose and mouth
may not move by more than ``max_landmark_shift`` of the face's width (a slimming pair must move the jaw and
nothing else); a pair whose edit cannot be seen is dropped. Photos with no face, a face too small, or more
faces than ``max_faces`` are skipped with that reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from tasks import face_regions as fr
from tasks import portrait_operations as ops
from tasks.masks import bbox_of
from tasks.records import Candidate, Skip, SourceSample, TaskResult, skip_for
from tasks.tools import Face, Tools

NAME = "portrait_beautification"
GEDIT_KEY = "ps_human"
ANNOTATORS: tuple[str, ...] = ()
TOOLS = ("faces", "persons")
INPUTS = "image"
LOCAL = True

OPERATIONS = (
    "skin_smoothing",
    "blemish_removal",
    "eye_brightening",
    "face_slimming",
    "teeth_whitening",
    "background_blur",
)

Phrases = tuple[tuple[str, str], ...]
PHRASES: dict[str, Phrases] = {
    "skin_smoothing:light": (
        (
            "Lightly smooth the skin on the face, keeping its natural texture.",
            "轻度磨皮，保留脸部皮肤的自然纹理。",
        ),
        ("Retouch the face with a light skin smoothing.", "给脸部做轻微的磨皮修饰。"),
    ),
    "skin_smoothing:strong": (
        ("Smooth the skin on the face.", "给脸部磨皮，让皮肤更光滑。"),
        ("Make the facial skin smooth and even.", "让脸部皮肤变得光滑细腻。"),
    ),
    "blemish_removal": (
        ("Remove the blemishes on the face.", "去除脸上的瑕疵。"),
        ("Clear the spots from the skin of the face.", "去掉脸上的斑点和痘痘。"),
    ),
    "eye_brightening": (
        ("Brighten the eyes.", "提亮眼睛。"),
        ("Make the eyes brighter and clearer.", "让眼睛更明亮、更有神。"),
    ),
    "face_slimming": (
        ("Slim the face.", "瘦脸。"),
        ("Make the face slimmer.", "让脸型更瘦一些。"),
    ),
    "face_slimming:inverse": (
        ("Make the face a little fuller.", "让脸型稍微丰满一些。"),
        ("Widen the jaw and cheeks slightly.", "把下颌和脸颊稍微加宽一些。"),
    ),
    "teeth_whitening": (
        ("Whiten the teeth.", "美白牙齿。"),
        ("Make the teeth whiter.", "让牙齿更白一些。"),
    ),
    "background_blur": (
        ("Blur the background behind the person.", "虚化人物身后的背景。"),
        ("Add a shallow depth of field so the background is blurred.", "加上浅景深效果，让背景变模糊。"),
    ),
    "background_blur:inverse": (
        ("Make the background sharp.", "让背景变清晰。"),
        ("Remove the background blur.", "去除背景虚化。"),
    ),
}


@dataclass(frozen=True)
class Params:
    operations: tuple[str, ...] = OPERATIONS
    per_image: int = 3  # operations drawn per photo (those that cannot be done on it are not drawn)
    max_faces: int = 1
    min_face: float = 0.15  # face width / the photo's shorter side
    max_landmark_shift: float = 0.02  # of the face's width, for the points an edit must not move
    min_change: float = 1.5  # mean change inside the edited region, in 8-bit levels
    inverse_pairs: bool = True
    min_person: float = 0.08  # person mask area share needed for background blur
    max_person: float = 0.85


def _phrase(key: str, rng: np.random.Generator) -> dict[str, str]:
    options = PHRASES[key]
    en, zh = options[int(rng.integers(len(options)))]
    return {"en": en, "zh": zh}


def _mean_change(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    if not mask.any():
        return 0.0
    return float(np.abs(a[mask].astype(np.int16) - b[mask].astype(np.int16)).mean())


def _same_face(faces: list[Face], box: tuple[int, int, int, int]) -> Face | None:
    """The face in ``faces`` that overlaps ``box`` most."""
    best, best_iou = None, 0.3
    for face in faces:
        x0, y0 = max(face.box[0], box[0]), max(face.box[1], box[1])
        x1, y1 = min(face.box[2], box[2]), min(face.box[3], box[3])
        inter = max(0, x1 - x0) * max(0, y1 - y0)
        union = (
            (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])
            + (box[2] - box[0]) * (box[3] - box[1])
            - inter
        )
        if inter / max(union, 1) > best_iou:
            best, best_iou = face, inter / max(union, 1)
    return best


def landmark_shift(before: np.ndarray, after: np.ndarray, indices: tuple[int, ...]) -> float:
    """Largest displacement of the given mesh points, as a fraction of the face's width."""
    moved = np.linalg.norm(after[list(indices)] - before[list(indices)], axis=1)
    return float(moved.max()) / fr.face_width(before)


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    unknown = set(params.operations) - set(OPERATIONS)
    if unknown:
        raise ValueError(f"unknown portrait operations {sorted(unknown)}; known: {OPERATIONS}")
    image = source.image
    finder = tools["faces"]
    faces = finder(image)
    if not faces:
        return Skip("no_face", "no face found")
    if len(faces) > params.max_faces:
        return Skip("too_many_faces", f"{len(faces)} faces, at most {params.max_faces}")
    face = faces[0]
    width = fr.face_width(face.landmarks)
    if width < params.min_face * min(image.shape[:2]):
        return Skip(
            "face_too_small", f"face {width:.0f} px wide, under {params.min_face:.0%} of the shorter side"
        )

    rng = np.random.default_rng(seed)
    person = tools["persons"](image)
    problems: Counter[str] = Counter()
    possible = [op for op in params.operations if _feasible(op, image, face, person, params, problems)]
    if not possible:
        return skip_for(problems)
    chosen = sorted(rng.choice(possible, size=min(params.per_image, len(possible)), replace=False))
    candidates: list[Candidate] = []
    for name in (str(n) for n in chosen):
        made = _apply(name, image, face, person, params, rng)
        before, after, mask, key, record = made
        if _mean_change(before, after, mask) < params.min_change:
            problems["edit_not_visible"] += 1
            continue
        problem = _outside_person(str(name), mask, person, width) or _identity_problem(
            str(name), finder, image, before, after, face, params
        )
        if problem:
            problems[problem] += 1
            continue
        box = bbox_of(mask)
        inverse = record.get("inverse", False)
        candidates.append(
            Candidate(
                f"{name}:{record.get('level', '')}",
                before,
                after,
                _phrase(key, rng),
                mask=mask,
                bbox=box,
                params={"operation": name, "inverse": False, **record},
            )
        )
        if params.inverse_pairs and name in ("face_slimming", "background_blur") and not inverse:
            candidates.append(
                Candidate(
                    f"{name}:{record.get('level', '')}:inverse",
                    after,
                    before,
                    _phrase(f"{name}:inverse", rng),
                    mask=mask,
                    bbox=box,
                    params={"operation": name, **record, "inverse": True},
                )
            )
    if candidates:
        return candidates
    return skip_for(problems)


def _feasible(
    name: str, image: np.ndarray, face: Face, person: np.ndarray, params: Params, problems: Counter[str]
) -> bool:
    if name == "teeth_whitening":
        teeth = ops.teeth_mask(image, face.landmarks)
        if (
            fr.mouth_openness(face.landmarks) < 0.06
            or teeth.sum() < 0.0004 * fr.face_width(face.landmarks) ** 2
        ):
            problems["teeth_not_visible"] += 1
            return False
    if name == "eye_brightening" and fr.eye_openness(face.landmarks) < 0.18:
        problems["eyes_closed"] += 1
        return False
    if name == "face_slimming" and abs(fr.yaw(face.landmarks)) > 0.35:
        problems["face_turned"] += 1  # a turned face's jaw is not where a frontal slimming warp expects it
        return False
    if name == "background_blur":
        share = float((person > 0.5).mean())
        if not params.min_person <= share <= params.max_person:
            problems["person_mask_unusable"] += 1
            return False
    return True


def _apply(
    name: str, image: np.ndarray, face: Face, person: np.ndarray, params: Params, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, dict]:
    """(source, target, edited region, phrase key, parameters to record) for one operation."""
    landmarks = face.landmarks
    width = fr.face_width(landmarks)
    if name == "skin_smoothing":
        light = bool(rng.random() < 0.5)
        keep = float(rng.uniform(0.25, 0.35) if light else rng.uniform(0.0, 0.1))
        edited, mask = ops.smooth_skin(image, landmarks, keep)
        level = "light" if light else "strong"
        return image, edited, mask, f"skin_smoothing:{level}", {"level": level, "keep_detail": round(keep, 3)}
    if name == "blemish_removal":
        count = int(rng.integers(3, 8))
        spotted, mask = ops.add_blemishes(image, landmarks, rng, count)
        return spotted, image, mask, "blemish_removal", {"level": f"{count}spots", "spots": count}
    if name == "eye_brightening":
        amount = float(rng.uniform(0.35, 0.6))
        edited, mask = ops.brighten_eyes(image, landmarks, amount)
        return image, edited, mask, "eye_brightening", {"level": f"{amount:.2f}", "amount": round(amount, 3)}
    if name == "teeth_whitening":
        amount = float(rng.uniform(0.6, 1.0))
        edited, mask = ops.whiten_teeth(image, landmarks, amount)
        return image, edited, mask, "teeth_whitening", {"level": f"{amount:.2f}", "amount": round(amount, 3)}
    if name == "face_slimming":
        amount = float(rng.uniform(0.06, 0.1))
        edited, mask = ops.slim_face(image, landmarks, amount, person)
        return image, edited, mask, "face_slimming", {"level": f"{amount:.2f}", "amount": round(amount, 3)}
    radius = float(rng.uniform(0.012, 0.025)) * float(np.hypot(*image.shape[:2]))
    soft = cv2.GaussianBlur((person > 0.5).astype(np.float32), (0, 0), max(1.0, width / 100))
    edited, mask = ops.blur_background(image, soft, radius)
    return image, edited, mask, "background_blur", {"level": f"{radius:.0f}px", "radius_px": round(radius, 1)}


def _outside_person(name: str, mask: np.ndarray, person: np.ndarray, face_width: float) -> str | None:
    """A retouch of the face may not reach past the person (a slimming warp by at most its own reach)."""
    if name == "background_blur":
        return None
    reach = max(3, round(0.05 * face_width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    allowed = cv2.dilate((person > 0.5).astype(np.uint8), kernel) > 0
    return "edit_outside_person" if (mask & ~allowed).sum() > 0.002 * mask.size else None


def _identity_problem(
    name: str,
    finder,  # noqa: ANN001 - a FaceFinder
    image: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    face: Face,
    params: Params,
) -> str | None:
    """Why the edited face is not the same person's face any more (None when it is)."""
    if name == "background_blur":
        return None  # the face's pixels are untouched by construction (the mask excludes the person)
    found = _same_face(finder(after), face.box)
    reference = face if before is image else _same_face(finder(before), face.box)
    if found is None or reference is None:
        return "face_lost_after_edit"
    # A slimming squeezes the lower face, mouth included; the eyes and nose must still stay put.
    stable = fr.STABLE_UPPER if name == "face_slimming" else fr.STABLE
    if landmark_shift(reference.landmarks, found.landmarks, stable) > params.max_landmark_shift:
        return "landmarks_moved"
    if name == "face_slimming":
        jaw = list(fr.JAW_RIGHT + fr.JAW_LEFT)
        moved = np.linalg.norm(found.landmarks[jaw] - reference.landmarks[jaw], axis=1).mean()
        if moved / fr.face_width(reference.landmarks) < 0.01:
            return "slimming_not_measurable"
    return None

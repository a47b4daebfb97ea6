"""The offline judge (CPU, no model): scores an edit triplet from its source, its target and its instruction.

It reads the instruction (annotators/judge/intent.py: the kind of edit and, for global edits, which way each
property should move, in English and in Chinese) and then checks the pixels for that edit; it never looks at
the task's own parameters or mask, so a pair whose instruction asks for another edit than the one made
scores low. Measurements run on the images downscaled to about 512x512:

- the change map: per-pixel CIELAB colour difference; the edited region is where it exceeds 8, cleaned;
- global properties and their change: brightness (mean L), warmth (mean b), vividness (contrast of L plus
  mean chroma), haze (the dark channel), light added as thin streaks (rain) or specks (snow);
- preservation: PSNR outside the edited region (local edits); SSIM's structure term (global edits);
- the edited region against its surroundings (tasks/fill_quality.py): for a removal the region must have
  differed from its surroundings in the source and look like them in the target, and the reverse for an
  addition; fill artefacts (smears, texture holes, foreign pixels, seams) lower quality;
- motion: the person in the changed region, segmented in both pictures and followed between them
  (annotators/judge/motion.py): the same one person, present in both, whose body went the way named;
- quality: sharpness, added noise (on what a background change kept), blown or crushed pixels, a flat output.

Scores follow VIEScore's structure (each the min of two criteria; ramp(x, a, b) = clip((x - a)/(b - a))·10):
SC = min(edit_success, not_over_edited), PQ = min(naturalness, no_artifacts), O = sqrt(SC·PQ). English and
Chinese that ask for different edits cap SC at 2. Thresholds per task were calibrated against pairs labelled
by eye (bench/labels/, annotators/judge/thresholds.yaml, bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from annotators.judge.appearance import (
    colour_measures,
    material_measures,
    old_colour_rim,
    style_measures,
    text_measures,
)
from annotators.judge.intent import Intent, read_instruction
from annotators.judge.motion import motion_measures
from annotators.judge.result import JudgeResult
from tasks.fill_quality import measure_fill, ring_of, surroundings
from tasks.scene import is_outdoor_scene

WORK_AREA = 512 * 512
CHANGED_DELTA_E = 8.0  # CIE76 colour difference from which a pixel counts as edited
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_C3 = _C2 / 2


def ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 10.0)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def ssim_maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SSIM and its structure term for two grey float images in 0..255 (Wang et al. 2004)."""

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = np.maximum(blur(a * a) - mu_a * mu_a, 0.0)
    var_b = np.maximum(blur(b * b) - mu_b * mu_b, 0.0)
    cov = blur(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    structure = (cov + _C3) / (np.sqrt(var_a * var_b) + _C3)
    return ssim, structure


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two equally shaped uint8 pixel sets; capped at 100 for identical inputs."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _sharpness(grey: np.ndarray, where: np.ndarray | None = None) -> float:
    """Laplacian variance over grey variance (optionally only where `where`): fine detail for the range."""
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    if where is not None:
        grey, lap = grey[where], lap[where]
    var = float(grey.var())
    return float(lap.var()) / var if var > 1e-6 else 0.0


def _sharpness_ratio(g_src: np.ndarray, g_tgt: np.ndarray, where: np.ndarray | None = None) -> float:
    src_sharp = _sharpness(g_src, where)
    return _sharpness(g_tgt, where) / src_sharp if src_sharp > 0 else 1.0


def _bounded(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h * w <= WORK_AREA:
        return rgb
    scale = (WORK_AREA / (h * w)) ** 0.5
    return cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)


def _clipped(rgb: np.ndarray) -> np.ndarray:
    low = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    high = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    return (low >= 250) | (high <= 5)


def _detail_clipped(source: np.ndarray, target: np.ndarray, g_source: np.ndarray) -> float:
    """Share of the picture blown out or crushed in the target, less that in the source, counting only where
    the source shows detail: a white backdrop that stays (or becomes again) white has nothing to lose."""
    detail = cv2.GaussianBlur(_fine(g_source), (0, 0), 2.0) >= 1.5
    return float((_clipped(target) & detail).mean() - (_clipped(source) & detail).mean())


def _dark_channel(rgb: np.ndarray) -> float:
    """Mean of the per-pixel channel minimum over 15x15 windows: near 0 for a clear scene, high in haze."""
    low = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2]).astype(np.float32) / 255.0
    return float(cv2.erode(low, np.ones((15, 15), np.uint8)).mean())


def _fine(grey: np.ndarray) -> np.ndarray:
    return np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0))


@dataclass
class Pair:
    """A triplet's images at the working size, with what every score reads."""

    source: np.ndarray
    target: np.ndarray
    lab_source: np.ndarray = field(init=False)
    lab_target: np.ndarray = field(init=False)
    delta: np.ndarray = field(init=False)  # per-pixel CIE76 difference
    region: np.ndarray = field(init=False)  # the edited region (bool)

    def __post_init__(self) -> None:
        self.lab_source, self.lab_target = _lab(self.source), _lab(self.target)
        self.delta = np.linalg.norm(self.lab_target - self.lab_source, axis=2)
        changed = (cv2.GaussianBlur(self.delta, (0, 0), 1.0) > CHANGED_DELTA_E).astype(np.uint8)
        changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        self.region = cv2.morphologyEx(changed, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)) > 0


def measure(source: np.ndarray, target: np.ndarray, intent: Intent | None = None) -> dict[str, float]:
    """Every measurement the scores use (see the module docstring); `intent` adds those its kind of edit
    needs (the named colour, the material, the style, the quoted text)."""
    if source.shape != target.shape:
        raise ValueError(f"source {source.shape} and target {target.shape} differ in size")
    pair = Pair(_bounded(source), _bounded(target))
    g_src, g_tgt = _grey(pair.source), _grey(pair.target)
    _, structure = ssim_maps(g_src, g_tgt)
    l_src, l_tgt = pair.lab_source[..., 0], pair.lab_target[..., 0]
    chroma_src = np.hypot(pair.lab_source[..., 1], pair.lab_source[..., 2])
    chroma_tgt = np.hypot(pair.lab_target[..., 1], pair.lab_target[..., 2])
    added = l_tgt - l_src  # light added per pixel (rain, snow); negative where taken away
    smooth = cv2.GaussianBlur(_fine(g_src), (0, 0), 2.0) < 1.5  # flat in the source: noise shows there
    m: dict[str, float] = {
        "changed_frac": float(pair.region.mean()),
        "mean_delta": float(pair.delta.mean()),
        "structure": float(structure.mean()),
        "d_brightness": float(l_tgt.mean() - l_src.mean()),
        "d_warmth": float(pair.lab_target[..., 2].mean() - pair.lab_source[..., 2].mean()),
        "d_vivid": _vividness_change(l_src, l_tgt, chroma_src, chroma_tgt),
        "d_haze": _dark_channel(pair.target) - _dark_channel(pair.source),
        "d_contrast": float(l_tgt.std() - l_src.std()),
        "sparse_light": float(np.mean(added > 12) - np.mean(added < -12)),
        "target_std": float(g_tgt.std()),
        "clipped_excess": _detail_clipped(pair.source, pair.target, g_src),
        "sharpness_ratio": _sharpness_ratio(g_src, g_tgt),
        "noise_ratio": _noise_ratio(g_src, g_tgt, smooth),
        "chroma_source": float(chroma_src.mean()),
        "chroma_target": float(chroma_tgt.mean()),
    }
    # Time of day and weather ask for a scene with a sky (the clean photo is the source of an "add rain" pair
    # and the target of a "remove the rain" one).
    m["outdoor_scene"] = float(is_outdoor_scene(pair.source) or is_outdoor_scene(pair.target))
    if intent is not None and intent.kind in ("background", "material") and pair.region.any():
        # A new background or material brings its own grain: added noise is looked for on what was kept.
        m["noise_ratio"] = _noise_ratio(g_src, g_tgt, smooth & ~pair.region)
    if intent is not None and intent.kind == "material" and (~pair.region).mean() >= 0.05:
        # A smooth material (glazed ceramic, polished marble) takes the grain of a grainy photo off the object
        # it covers: a blur is looked for on what was kept.
        m["sharpness_ratio"] = _sharpness_ratio(g_src, g_tgt, ~pair.region)
    # How the region sits among its surroundings is the costly part (most of a judgement's time), and only a
    # removal or an addition is scored on it.
    fill = intent is None or intent.kind in ("remove", "add")
    rim = intent is not None and intent.kind in ("background", "replace")
    m.update(_local_measures(pair, intent.colour if intent else None, fill, rim))
    if intent is not None and intent.kind == "material" and m["localised"]:
        m.update(material_measures(g_src, g_tgt, pair.lab_source, pair.lab_target, _main_region(pair.region)))
    if intent is not None and intent.kind == "style":
        m.update(style_measures(pair.source, pair.target, g_src, g_tgt, intent.to_photo))
    if intent is not None and intent.kind == "motion" and pair.region.any():
        m.update(motion_measures(pair.source, pair.target, pair.region))
    if intent is not None and intent.kind == "text" and intent.texts is not None:
        m.update(text_measures(source, target, *intent.texts))  # full size: small print must stay readable
    return m


def _vividness_change(l_src: np.ndarray, l_tgt: np.ndarray, c_src: np.ndarray, c_tgt: np.ndarray) -> float:
    """Relative change of contrast (std of L), plus that of mean chroma when the source has colour."""
    change = l_tgt.std() / max(float(l_src.std()), 1e-3) - 1
    if c_src.mean() > 2.0:  # a grey photo cannot become more or less saturated: contrast alone counts
        change += c_tgt.mean() / float(c_src.mean()) - 1
    return float(change)


def _noise_ratio(g_src: np.ndarray, g_tgt: np.ndarray, smooth: np.ndarray) -> float:
    """Fine detail of the target over the source's, where the source is flat: added noise or grain."""
    if not smooth.any():
        return 1.0
    return float((np.median(_fine(g_tgt)[smooth]) + 0.3) / (np.median(_fine(g_src)[smooth]) + 0.3))


def _main_region(region: np.ndarray) -> np.ndarray:
    """The edited region's main parts: its connected pieces of at least a tenth of the largest's area."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8))
    areas = stats[1:, cv2.CC_STAT_AREA]
    return np.isin(labels, 1 + np.flatnonzero(areas >= 0.1 * areas.max()))


def _local_measures(
    pair: Pair, colour_key: str | None, fill: bool = True, rim: bool = False
) -> dict[str, float]:
    """The edited region's extent, what lies outside it, and how it sits in its surroundings (with `rim`,
    the old colours left along its outline). A recoloured or re-textured object may fill most of a close-up:
    regions up to 90 % of the photo are measured."""
    region = pair.region
    if region.mean() < 0.0005 or region.mean() > 0.9:
        return {"localised": 0.0}
    main = _main_region(region)
    grown = cv2.dilate(main.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    outside = ~cv2.dilate(grown.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    measures = {
        "localised": float(main.sum() / max(region.sum(), 1)),
        "psnr_outside": psnr(pair.source[outside], pair.target[outside]) if outside.any() else 100.0,
    }
    # How the region sits among its surroundings, in the target and in the source (for removals and
    # additions); fill artefacts are measured as a fill of the target.
    if fill:
        as_fill = measure_fill(pair.source, pair.target, grown, main)  # the target's region as a fill
        back = measure_fill(pair.target, pair.source, grown, main)  # the source's region, for an addition
        around = surroundings(pair.source, grown)
        measures.update(
            target_novel=as_fill.novel,
            source_novel=back.novel,
            fill_problems=float(len(as_fill.problems(around.energy))),
            unfill_problems=float(len(back.problems(around.energy))),
            surfaces_around=float(around.regions),
        )
    ring = ring_of(grown)
    measures.update(
        region_delta=float(pair.delta[main].mean()),
        ring_delta=float(pair.delta[ring].mean()) if ring.any() else 0.0,
        lightness_correlation=_correlation(pair.lab_source[..., 0][main], pair.lab_target[..., 0][main]),
        region_sharpness=_region_sharpness(pair, main),
    )
    if rim:
        measures["old_rim"] = old_colour_rim(pair.lab_source, pair.lab_target, main)
    measures.update(colour_measures(pair.lab_source, pair.lab_target, main, colour_key))
    return measures


def _region_sharpness(pair: Pair, region: np.ndarray) -> float:
    """Fine detail (Laplacian variance) of the target over the source's, inside the region: below 1 where
    the region was blurred (a background made soft), above 1 where it was sharpened."""
    lap_src = cv2.Laplacian(_grey(pair.source), cv2.CV_32F)[region]
    lap_tgt = cv2.Laplacian(_grey(pair.target), cv2.CV_32F)[region]
    return float((lap_tgt.var() + 1e-3) / (lap_src.var() + 1e-3))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 16 or a.std() < 1e-3 or b.std() < 1e-3:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


SCENE_PROPERTIES = ("haze", "rain", "snow", "time")


def _tone_success(intent: Intent, m: dict[str, float]) -> float:
    """How well every property the instruction names moved its way (the weakest counts). Weather and time
    of day on a photo without an outdoor scene (a close-up, an interior) are edits nobody asks for."""
    if set(intent.tone) & set(SCENE_PROPERTIES) and not m["outdoor_scene"]:
        return 2.0
    scores = []
    for prop, direction in intent.tone.items():
        if prop == "brightness":
            scores.append(ramp(direction * m["d_brightness"], 0.5, 8.0))
        elif prop == "warmth":
            scores.append(ramp(direction * m["d_warmth"], 0.5, 6.0))
        elif prop == "vivid":
            scores.append(ramp(direction * m["d_vivid"], 0.02, 0.3))
        elif prop == "haze":
            haze, contrast = direction * m["d_haze"], -direction * m["d_contrast"]
            scores.append(min(ramp(haze, 0.01, 0.12), ramp(contrast, 0, 4)))
        elif prop in ("rain", "snow"):
            scores.append(ramp(direction * m["sparse_light"], 0.003, 0.04))
        elif direction == "night":
            scores.append(min(ramp(-m["d_brightness"], 5, 25), ramp(-m["d_warmth"], -1, 3)))
        elif direction == "dusk":
            warmer = m["d_warmth"] + 0.5 * m["d_vivid"]
            scores.append(min(ramp(-m["d_brightness"], 1, 10), ramp(warmer, -2, 2)))
        elif direction == "day":
            scores.append(ramp(m["d_brightness"], 1, 12))
    return min(scores) if scores else 0.0


def _extent(m: dict[str, float], high: float) -> float:
    """A local edit changed a visible region, and not (nearly) the whole photo beyond `high`."""
    return min(ramp(m["changed_frac"], 0.0005, 0.004), 10 - ramp(m["changed_frac"], high, high + 0.15))


def _colour_success(intent: Intent, m: dict[str, float]) -> float:
    """The region now has the colour named (CIE94 of its median, and its hue), its shading stayed, and no
    part of the same surface was left in the old colour."""
    change = min(ramp(m["region_delta"], 8, 25), ramp(m["lightness_correlation"], 0.3, 0.8))
    whole = 10 - ramp(m["left_behind"], 0.1, 0.3)
    if not m.get("colour_asked"):
        return min(change, whole)
    named = min(10 - ramp(m["colour_error"], 5, 30), 10 - ramp(m["hue_error"], 25, 60))
    return min(change, whole, named)


def _material_success(intent: Intent, m: dict[str, float]) -> float:
    """The surface changed, its texture too (a new colour alone is no new material), while the object
    kept its outline and its form (its shading; not for glass, which shows what lies behind it)."""
    change = min(ramp(m["region_delta"], 6, 20), ramp(m["texture_change"], 0.15, 0.5))
    # Glass and metal reflect what is around them: the form may read quite differently and still hold.
    outline = max(ramp(m["outline_kept"], 0.3, 0.7), ramp(m["outline_edges_kept"], 0.0, 0.2))
    form = 10.0 if intent.see_through else ramp(m["form_kept"], -0.3, 0.2)
    return min(change, form, outline)


def _local_success(intent: Intent, m: dict[str, float]) -> float:
    """A local edit: a compact region changed, and changed the way the instruction's kind implies."""
    if m.get("localised", 0.0) == 0.0:
        return 0.0
    focus = ramp(m["localised"], 0.6, 0.9)
    if intent.kind == "remove":  # something stood out, and the place now looks like its surroundings
        change = min(ramp(m["source_novel"], 0.02, 0.15), 10 - ramp(m["target_novel"], 0.01, 0.06))
    elif intent.kind == "add":
        change = min(ramp(m["target_novel"], 0.02, 0.15), 10 - ramp(m["source_novel"], 0.01, 0.06))
    elif intent.kind == "colour":
        return min(_extent(m, 0.8), focus, _colour_success(intent, m))
    elif intent.kind == "material":
        return min(_extent(m, 0.7), focus, _material_success(intent, m))
    elif intent.kind == "portrait":  # retouching is subtle: a small, faint change on the person
        return min(_extent(m, 0.3), focus, ramp(m["region_delta"], 3, 10))
    elif intent.kind == "replace":
        # The new object takes the old one's place, which may fill a close-up; an outline that runs where
        # the source has no edge is a new object much larger than the old one (or not in its place).
        change = min(ramp(m["region_delta"], 6, 20), 10 - ramp(m["left_behind"], 0.15, 0.45))
        return min(_extent(m, 0.8), focus, change)
    else:
        change = ramp(m["region_delta"], 6, 20)
    return min(_extent(m, 0.45), focus, change)


# Style families (annotators/judge/intent.py) and the statistic each moves from a photo, with its ramp: a
# sketch drops colour, a cartoon or pixel art flattens, a watercolour softens, a painting adds strokes.
STYLE_CUES: dict[str, tuple[str, int, float, float]] = {
    "sketch": ("d_colours", -1, 0.3, 1.0),
    "flat": ("d_flat", 1, 0.03, 0.2),
    "watercolour": ("d_gradient", -1, 0.1, 0.4),
    "painting": ("d_gradient", 1, 0.1, 0.4),
    "colour_pencil": ("d_gradient", 1, 0.1, 0.4),
}


def _style_success(intent: Intent, m: dict[str, float]) -> float:
    """A global change of rendering, in the direction asked: towards the style named, or (a stylised
    picture made a photo) away from it."""
    change = min(ramp(m["mean_delta"], 3, 12), ramp(m["changed_frac"], 0.05, 0.3))
    cue = STYLE_CUES.get(intent.style or "")
    if cue is None:
        return change
    statistic, sign, low, high = cue
    direction = -1 if intent.to_photo else 1
    moved = ramp(direction * sign * m[statistic], low, high)
    if statistic == "d_colours":
        moved = max(moved, ramp(-direction * m["d_chroma"], 0.3, 1.0))
        photo, drawing = ("chroma_target", "chroma_source")
        if not intent.to_photo:
            photo, drawing = drawing, photo
        if m[photo] < 3.0:
            # A grey photo has no colour a sketch could take away: only the wrong way is told, where the
            # drawing has colour of its own; the tint of its paper (ink wash on a grey photo) is none.
            moved = 10.0 if m[drawing] < 10.0 else 10 - ramp(-direction * sign * m[statistic], low, high)
    return min(change, moved)


MOTION_EXTENT = {"face": 0.05, "head": 0.15, "arm": 0.25, "body": 0.5}  # of the frame a motion may change


def _walk_success(walks: tuple[str, ...], m: dict[str, float]) -> float:
    """The body went the way named: sideways by a good part of its height with the feet at the same depth,
    or towards (larger, feet lower) or away from the camera (smaller, feet higher); a walk named on one axis
    must be mostly along it."""
    sideways, depth = abs(m["dx"]), abs(m["feet_dy"])
    growth = float(np.log(max(m["scale"], 1e-3)))
    scores = []
    for walk in walks:
        if walk in ("left", "right"):
            scores.append(ramp((1 if walk == "right" else -1) * m["dx"], 0.1, 0.3))
        else:
            sign = 1 if walk == "towards" else -1
            scores.append(min(ramp(sign * growth, 0.03, 0.12), ramp(sign * m["feet_dy"], 0.0, 0.06)))
    if not set(walks) & {"towards", "away"}:  # sideways only: little change of depth
        scores.append(ramp(sideways / (depth + 0.02), 0.8, 1.5))
    if not set(walks) & {"left", "right"}:  # towards or away only: little sideways motion
        scores.append(ramp(depth / (sideways + 0.02), 1.0, 2.0))
    return min(scores)


def _motion_success(intent: Intent, m: dict[str, float]) -> float:
    """The same one person in both pictures (tracked, same colours, same size, not a group), and their body
    moved as the instruction says: a walk the way named, an arm, head or face motion in place."""
    if not m.get("person_found"):
        return 0.0
    # Full marks where the motion task's gates (tasks/motion_change.py) pass a pair: a tracked overlap of
    # 0.3, a size ratio of 0.7, a breadth of 0.6 (a standing person is about half as wide as tall).
    same = min(
        ramp(m["overlap"], 0.2, 0.45),
        10 - ramp(m["colour"], 0.55, 0.8),
        ramp(m["size_ratio"], 0.5, 0.72),
        10 - 7 * m["cut_by_side"],
    )
    # One person, not a group: no wider than a standing body, and the changed region is mostly them (where
    # half of it is not, someone else moved there too: a second walker, a crowd passing).
    one = 10.0 if m["close_up"] else 10 - ramp(m["breadth"], 0.5, 0.7)
    one = min(one, ramp(m["person_cover"], 0.4, 0.6))
    if intent.walks:
        moved = _walk_success(intent.walks, m)
    elif intent.part in ("face", "head", "arm"):  # a pose: the body stayed where it was
        growth = abs(float(np.log(max(m["scale"], 1e-3))))
        moved = min(10 - ramp(m["shift"], 0.12, 0.25), 10 - ramp(growth, 0.1, 0.2))
    else:  # moved somewhere else than a walk names (up, down)
        moved = ramp(m["shift"], 0.05, 0.15)
    return min(same, one, moved)


def _text_success(intent: Intent, m: dict[str, float]) -> float:
    """Text changed in small regions (one short word is a twentieth of a percent of a page); where the
    instruction quotes the old and the new text, OCR reads the new text where the target changed and no
    longer the old one there."""
    success = min(ramp(m["changed_frac"], 0.00005, 0.0005), 10 - ramp(m["changed_frac"], 0.15, 0.3))
    if intent.texts is not None:
        read = m["new_text_read"] and m["old_text_gone"]
        success = min(success, 10.0 if read else 3.0)
    return success


def score(intent: Intent, m: dict[str, float]) -> dict[str, float]:
    """Measurements and the instruction's reading -> the four sub-scores (see the module docstring)."""
    blur_asked = intent.kind == "portrait" and intent.part == "background"
    if intent.kind == "tone":
        success = _tone_success(intent, m)
        not_over = ramp(m["structure"], 0.45, 0.85)
    elif intent.kind == "style":
        success = _style_success(intent, m)
        # Fine edges are lost to hatching, blocks and strokes that redraw them; the scene's layout at 64x64
        # is kept by any rendering of the same scene.
        not_over = max(ramp(m["edge_f1"], 0.15, 0.5), ramp(m["layout"], 0.75, 0.95))
    elif intent.kind == "background":
        success = min(ramp(m["mean_delta"], 3, 15), ramp(m["changed_frac"], 0.05, 0.3))
        not_over = ramp(m["structure"], 0.3, 0.7)
    elif intent.kind == "motion":  # a person moved: a local change, the rest of the frame kept
        high = MOTION_EXTENT[intent.part or "body"]
        # A walker far from the camera may change half a percent of the frame.
        extent = min(ramp(m["changed_frac"], 0.0005, 0.003), 10 - ramp(m["changed_frac"], high, 2 * high))
        success = min(extent, _motion_success(intent, m))
        not_over = ramp(m.get("psnr_outside", 0.0), 22, 34)
    elif intent.kind == "text":
        success = _text_success(intent, m)
        not_over = ramp(m.get("psnr_outside", 0.0), 22, 34)
    elif blur_asked:  # the background blurred (or made sharp), the person kept
        sharper = float(np.log(max(m.get("region_sharpness", m["sharpness_ratio"]), 1e-3)))
        success = min(ramp(-intent.direction * sharper, 0.05, 0.3), ramp(m["changed_frac"], 0.02, 0.1))
        not_over = ramp(m["structure"], 0.3, 0.7)
    elif intent.kind == "unknown":
        success, not_over = 0.0, 0.0
    else:
        success = _local_success(intent, m)
        not_over = ramp(m.get("psnr_outside", 0.0), 22, 34)
    naturalness = min(ramp(m["target_std"], 4, 20), 10 - ramp(m["clipped_excess"], 0.08, 0.35))
    no_artifacts = min(ramp(m["sharpness_ratio"], 0.05, 0.45), 10 - ramp(m["noise_ratio"], 1.8, 4.0))
    if intent.kind == "style":
        # Strokes, hatching and paper grain are the style, and a photo made from a sketch is softer than the
        # sketch: only a target that lost nearly all its detail (a blur) or its range is flawed.
        naturalness = ramp(m["target_std"], 4, 20)
        no_artifacts = (
            ramp(m["sharpness_ratio"], 0.005, 0.03)
            if intent.to_photo
            else ramp(m["sharpness_ratio"], 0.03, 0.1)
        )
    elif intent.kind == "text" and "word_stroke_off" in m:
        # A pasted-in word: bolder, blurred (both widen its strokes) or darker than the words on its line.
        # Or drawn at another size than the word it replaced: a tenth of the x-height starts to show.
        pasted = max(m["word_stroke_off"], 0.5 * m["word_contrast_off"])
        resized = ramp(m.get("word_size_off", 0.0), 0.1, 0.3)
        no_artifacts = min(no_artifacts, 10 - ramp(pasted, 0.1, 0.6), 10 - resized)
    elif intent.kind in ("background", "replace") and "old_rim" in m:
        # A band of the old background around the kept subject (matte halo), or of the old object around
        # its replacement: a few percent of the outline is visible.
        no_artifacts = min(no_artifacts, 10 - ramp(m["old_rim"], 0.03, 0.12))
    elif intent.kind == "tone" and any(intent.tone.get(weather) == 1 for weather in ("rain", "snow")):
        # Streaks and flakes are fine bright detail where the photo was flat: the edit, not added noise.
        no_artifacts = ramp(m["sharpness_ratio"], 0.05, 0.45)
    elif blur_asked:  # a blurred background is what was asked: only added noise is a flaw
        no_artifacts = 10 - ramp(m["noise_ratio"], 1.8, 4.0)
    if intent.kind in ("remove", "add"):
        # The filled side (the target of a removal, the source of an addition) must look like its
        # surroundings. Among several surfaces the fill had to draw where they meet, which pixels cannot
        # check: such pairs are trusted less.
        problems = m.get("fill_problems" if intent.kind == "remove" else "unfill_problems", 0.0)
        no_artifacts = min(no_artifacts, 10 - 3.0 * problems, 10 - 2.5 * (m.get("surfaces_around", 1) - 1))
    return {
        "edit_success": success,
        "not_over_edited": not_over,
        "naturalness": naturalness,
        "no_artifacts": max(no_artifacts, 0.0),
    }


class HeuristicJudge:
    # Compared by the filter before reusing a manifest's scores: bump with any change to measure() or score().
    name = "heuristic-v7"

    def judge(self, source: np.ndarray, target: np.ndarray, instruction: dict[str, str]) -> JudgeResult:
        intent = read_instruction(instruction)
        m = measure(source, target, intent)
        s = score(intent, m)
        sc = min(s["edit_success"], s["not_over_edited"])
        if not intent.consistent:
            sc = min(sc, 2.0)
        pq = min(s["naturalness"], s["no_artifacts"])
        details = {**m, **s, "intent": intent.kind, "consistent": intent.consistent}
        return JudgeResult.scored(round(sc, 3), round(pq, 3), details)


@dataclass
class Signature:
    """What two samples must share to be near-duplicates: the same scene, edited the same way."""

    source_phash: np.ndarray  # 8 bytes, cv2.img_hash.pHash of the source
    change_map: np.ndarray  # 16x16 mean |target - source| of grey, float32: where the edit happened
    lab_shift: np.ndarray  # 8x8x3 mean (target - source) in Lab, float32: which way colours moved

    @classmethod
    def of(cls, source: np.ndarray, target: np.ndarray) -> Signature:
        # pHash alone sees structure only: every edit of one photo (tone variants, removals of two different
        # objects) shares it. Comparing the edit itself, where and in which direction the pixels changed,
        # tells "same photo, same edit" (a duplicate) from "same photo, another edit" (a valid sample).
        src, tgt = _bounded(source), _bounded(target)
        # The change map at the judge's working size (a blur changes pixels but not their local means, so it
        # must be taken before the 16x16 averaging); 64x64 is plenty for the colour shift.
        change = cv2.absdiff(_grey(tgt), _grey(src))

        def lab(rgb: np.ndarray) -> np.ndarray:
            small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
            return cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)

        return cls(
            cv2.img_hash.pHash(source)[0],
            cv2.resize(change, (16, 16), interpolation=cv2.INTER_AREA),
            cv2.resize(lab(tgt) - lab(src), (8, 8), interpolation=cv2.INTER_AREA),
        )


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def change_difference(a: np.ndarray, b: np.ndarray) -> float:
    # +1 grey level keeps two no-op edits (both maps ~0) comparable instead of dividing by zero.
    return float(np.abs(a - b).sum() / (a.sum() + b.sum() + 1.0))


@dataclass
class NearDuplicateIndex:
    """Flags a sample whose source and edit look like an earlier sample's (first seen is the original).

    Candidates come from 8 one-byte bands of the source pHash: two hashes within `max_bits` <= 7 differ in at
    most 7 bytes, so they share a band (pigeonhole) and no pair is missed without comparing all pairs.
    """

    max_bits: int = 6
    # sum |change_a - change_b| / (sum change_a + sum change_b): 0 for the same edit, 1 for disjoint edits.
    # Relative, so a small local edit counts as much as a global one. A re-encoded copy of a photo with the
    # same edit measures 0.00-0.09 on the example photos; removals in two different places measure 1.0.
    max_change_diff: float = 0.12
    max_lab_diff: float = 1.0  # Lab units, mean over the 8x8 shift; ~1 is a just-visible difference
    _bands: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    _sigs: dict[str, Signature] = field(default_factory=dict)

    def add(self, sample_id: str, sig: Signature) -> str | None:
        """Registers the sample; returns the id of the sample it duplicates, or None."""
        bands = [(i, int(v)) for i, v in enumerate(sig.source_phash)]
        seen: set[str] = set()
        for band in bands:
            for other in self._bands.get(band, []):
                if other in seen:
                    continue
                seen.add(other)
                o = self._sigs[other]
                if (
                    hamming(sig.source_phash, o.source_phash) <= self.max_bits
                    and change_difference(sig.change_map, o.change_map) <= self.max_change_diff
                    and float(np.abs(sig.lab_shift - o.lab_shift).mean()) <= self.max_lab_diff
                ):
                    return other
        self._sigs[sample_id] = sig
        for band in bands:
            self._bands.setdefault(band, []).append(sample_id)
        return None

"""The offline judge on the appearance, text, portrait and motion categories: real photos edited the way the
instruction asks score well; a no-op, an unrelated target, a blurred or noisy target, the wrong colour or
direction, and an instruction of another category score low."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import PHOTOS
from lab_colour import to_lab, to_rgb
from skimage import data as skdata

from annotators.judge.heuristic import HeuristicJudge
from annotators.judge.intent import read_instruction
from pipelines.load import labels_from_annotations
from tasks.colours import TARGETS_BY_KEY

judge = HeuristicJudge()
CUP_BLUE = {"en": "Turn the cup blue.", "zh": "把杯子变成蓝色。"}
CUP_STONE = {"en": "Make the cup out of stone.", "zh": "把杯子变成石头材质的。"}
TO_SKETCH = {"en": "Turn this photo into a pencil sketch.", "zh": "把这张照片变成一幅铅笔素描。"}
TO_PHOTO = {"en": "Turn this pencil sketch into a realistic photo.", "zh": "把这幅铅笔素描变成真实照片。"}
BLUR_BACKGROUND = {"en": "Blur the background behind the person.", "zh": "虚化人物身后的背景。"}
SHARPEN_BACKGROUND = {"en": "Make the background sharp.", "zh": "让背景变清晰。"}


@pytest.fixture(scope="module")
def cup() -> tuple[np.ndarray, np.ndarray]:
    """coffee.png and the cup's hand-drawn mask."""
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    (image,) = [i for i in coco["images"] if i["file_name"] == "coffee.png"]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    annotations = [
        {"category": names[a["category_id"]], **a}
        for a in coco["annotations"]
        if a["image_id"] == image["id"]
    ]
    source = cv2.cvtColor(cv2.imread(str(PHOTOS / "coffee.png")), cv2.COLOR_BGR2RGB)
    labels = labels_from_annotations(annotations, *source.shape[:2])
    (label,) = [label for label in labels if label.category == "cup"]
    return source, label.mask > 0


def _recoloured(source: np.ndarray, mask: np.ndarray, key: str) -> np.ndarray:
    """The object takes the named colour's chroma and the colour's lightness moved by the object's shading."""
    lab = to_lab(source)
    aim = TARGETS_BY_KEY[key].lab
    shading = lab[..., 0] - np.median(lab[..., 0][mask])
    out = lab.copy()
    out[..., 0][mask] = np.clip(aim[0] + 0.8 * shading[mask], 0, 100)
    out[..., 1][mask], out[..., 2][mask] = aim[1], aim[2]
    return to_rgb(out)


def _bad_targets(
    source: np.ndarray, good: np.ndarray, photos: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    other = cv2.resize(photos["camera.png"], (source.shape[1], source.shape[0]))
    noise = np.random.default_rng(0).normal(0, 25, source.shape)
    return {
        "no-op": source,
        "unrelated": other,
        "blurred": cv2.GaussianBlur(good, (0, 0), 6),
        "noisy": np.clip(good + noise, 0, 255).astype(np.uint8),
    }


def test_the_new_instructions_are_read(photos: dict[str, np.ndarray]) -> None:
    colour = read_instruction(
        {
            "en": "Change the color of the pot from brown to mint green.",
            "zh": "把花盆的颜色从棕色改成薄荷绿色。",
        }
    )
    assert (colour.kind, colour.colour) == ("colour", "mint_green")
    assert read_instruction({"en": "", "zh": "把贝壳变成珊瑚色。"}).colour == "coral"  # Chinese alone
    assert read_instruction(TO_SKETCH).style == "sketch" and not read_instruction(TO_SKETCH).to_photo
    assert read_instruction(TO_PHOTO).to_photo
    text = read_instruction({"en": 'Change the text "OPEN" to "SALE".', "zh": "把文字“OPEN”改成“SALE”。"})
    assert (text.kind, text.texts) == ("text", ("OPEN", "SALE"))
    mouth = read_instruction({"en": "Make the person open their mouth.", "zh": "让这个人张开嘴。"})
    assert (mouth.kind, mouth.part, mouth.consistent) == ("motion", "face", True)
    blur = read_instruction(BLUR_BACKGROUND)
    assert (blur.kind, blur.part, blur.direction) == ("portrait", "background", 1)
    assert read_instruction(SHARPEN_BACKGROUND).direction == -1
    assert read_instruction(
        {"en": "Make the lighter out of glazed ceramic.", "zh": "把打火机变成陶瓷的。"}
    ).kind == ("material")


def test_a_colour_change_is_judged_against_the_colour_named(
    photos: dict[str, np.ndarray], cup: tuple[np.ndarray, np.ndarray]
) -> None:
    source, mask = cup
    blue = _recoloured(source, mask, "blue")
    good = judge.judge(source, blue, CUP_BLUE)
    assert good.details["intent"] == "colour" and good.o > 8, good.details
    red = judge.judge(source, blue, {"en": "Turn the cup red.", "zh": "把杯子变成红色。"})
    assert red.details["hue_error"] > 90 and red.o < 3
    # Half of the cup recoloured: the rest of the same white surface is left beside the edit.
    half = mask.copy()
    half[:, : int(np.flatnonzero(mask.any(axis=0)).mean())] = False
    partial = judge.judge(source, _recoloured(source, half, "blue"), CUP_BLUE)
    assert partial.details["left_behind"] > 0.15 and partial.o < good.o - 3
    low = {
        name: judge.judge(source, target, CUP_BLUE).o
        for name, target in _bad_targets(source, blue, photos).items()
    }
    low["another category"] = judge.judge(source, blue, {"en": "Remove the cup.", "zh": "移除杯子。"}).o
    assert max(low.values()) < 3, low


def test_a_material_change_keeps_the_outline_and_changes_the_surface(
    photos: dict[str, np.ndarray], cup: tuple[np.ndarray, np.ndarray]
) -> None:
    source, mask = cup
    h, w = source.shape[:2]
    stone = cv2.resize(skdata.brick(), (w, h)).astype(np.float32)  # a real brick wall photo
    lab = to_lab(source)
    shading = lab[..., 0] - np.median(lab[..., 0][mask])
    out = lab.copy()
    out[..., 0][mask] = np.clip(45 + 0.5 * shading[mask] + 0.25 * (stone[mask] - stone.mean()), 0, 100)
    out[..., 1][mask], out[..., 2][mask] = 2.0, 8.0
    target = to_rgb(out)
    good = judge.judge(source, target, CUP_STONE)
    assert good.details["intent"] == "material" and good.o > 7, good.details
    assert good.details["outline_edges_kept"] > 0.5 and good.details["texture_change"] > 0.3
    low = {
        name: judge.judge(source, bad, CUP_STONE).o
        for name, bad in _bad_targets(source, target, photos).items()
    }
    low["another category"] = judge.judge(source, target, TO_SKETCH).o
    assert max(low.values()) < 3.5, low


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png"])
def test_a_style_change_keeps_the_scene_and_goes_the_way_asked(
    photos: dict[str, np.ndarray], name: str
) -> None:
    source = photos[name]
    grey, _ = cv2.pencilSketch(
        cv2.cvtColor(source, cv2.COLOR_RGB2BGR), sigma_s=20, sigma_r=0.1, shade_factor=0.04
    )
    sketch = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)  # OpenCV's pencil sketch rendering
    forward = judge.judge(source, sketch, TO_SKETCH)
    inverse = judge.judge(sketch, source, TO_PHOTO)
    assert forward.o > 7 and inverse.o > 7, (forward.details, inverse.details)
    assert judge.judge(source, sketch, TO_PHOTO).sc < 3  # the wrong way round
    bad = _bad_targets(source, sketch, photos)
    # Grain added to a sketch cannot be told from hatching (engravings and coloured pencil are grainy by
    # design): the noisy target here is the photo with noise, which is no sketch.
    bad["noisy"] = _bad_targets(source, source, photos)["noisy"]
    bad["blurred photo"] = cv2.GaussianBlur(source, (0, 0), 6)
    low = {n: judge.judge(source, target, TO_SKETCH).o for n, target in bad.items()}
    low["another category"] = judge.judge(source, sketch, {"en": "Add a cat.", "zh": "添加一只猫。"}).o
    assert max(low.values()) < 4.5 < forward.o - 3, low


def _engraving(image: np.ndarray) -> np.ndarray:
    """Diagonal black lines every 6 px, wider where the photo is darker: hatching redraws every edge."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    yy, xx = np.mgrid[: grey.shape[0], : grey.shape[1]]
    ink = np.abs(((xx + yy) % 6) / 6.0 - 0.5) * 2 > grey
    return cv2.cvtColor(np.where(ink, 20, 240).astype(np.uint8), cv2.COLOR_GRAY2RGB)


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png"])
def test_an_engraving_keeps_the_scene_layout_either_way_round(
    photos: dict[str, np.ndarray], name: str
) -> None:
    source = photos[name]
    engraving = _engraving(source)
    forward = judge.judge(
        source, engraving, {"en": "Turn this photo into an engraving.", "zh": "把这张照片变成版画。"}
    )
    inverse = judge.judge(
        engraving,
        source,
        {"en": "Convert this engraving into a photorealistic image.", "zh": "把这幅版画变成写实照片。"},
    )
    # The scene's edges are the photo's, whichever side it is on: a pair and its inverse measure alike.
    for key in ("edge_f1", "layout"):
        assert forward.details[key] == pytest.approx(inverse.details[key]), key
    assert forward.details["layout"] > 0.8 and forward.o > 7 and inverse.sc > 7, forward.details
    unrelated = _bad_targets(source, engraving, photos)["unrelated"]
    other = judge.judge(source, _engraving(unrelated), {"en": "Turn this photo into an engraving."})
    assert other.details["layout"] < 0.3 and other.o < 4.5, other.details  # another scene's layout


def _signed(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (40, 40), (330, 120), (245, 245, 240), -1)
    cv2.putText(out, text, (55, 105), cv2.FONT_HERSHEY_DUPLEX, 2.2, (20, 20, 20), 4, cv2.LINE_AA)
    return out


def test_a_glass_object_need_not_keep_its_shading(cup: tuple[np.ndarray, np.ndarray]) -> None:
    source, mask = cup
    # Glass shows what lies behind it (here the blurred picture, turned round), a darker rim and a highlight:
    # its shading no longer follows the cup's form, which an opaque material's must.
    lab, behind = to_lab(source), to_lab(cv2.GaussianBlur(source[::-1, ::-1], (0, 0), 4))
    out = lab.copy()
    out[mask] = 0.6 * behind[mask] + 0.4 * np.array([60.0, 0.0, -4.0])
    rim = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    out[..., 0][rim] *= 0.5
    ys, xs = np.nonzero(mask)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    highlight = np.exp(-((yy - np.quantile(ys, 0.3)) ** 2 + (xx - np.quantile(xs, 0.3)) ** 2) / 72.0) * mask
    out[..., 0] = np.clip(out[..., 0] + 45 * highlight, 0, 100)
    target = to_rgb(out)
    glass = judge.judge(source, target, {"en": "Make the cup out of glass.", "zh": "把杯子变成玻璃材质的。"})
    assert read_instruction({"en": "", "zh": "把杯子变成玻璃材质的。"}).see_through
    assert glass.details["form_kept"] < 0 and glass.o > 7, glass.details
    assert judge.judge(source, target, CUP_STONE).o < 3  # stone would keep the cup's shading


def test_a_text_change_is_read_back_with_ocr(photos: dict[str, np.ndarray]) -> None:
    base = photos["chelsea.png"]
    source, target = _signed(base, "OPEN"), _signed(base, "SALE")
    instruction = {"en": 'Change the text "OPEN" to "SALE".', "zh": "把文字“OPEN”改成“SALE”。"}
    good = judge.judge(source, target, instruction)
    assert good.details["new_text_read"] == 1 and good.details["old_text_gone"] == 1 and good.o > 8
    wrong_word = judge.judge(source, _signed(base, "SHOP"), instruction)
    assert wrong_word.details["new_text_read"] == 0 and wrong_word.o < good.o - 3
    low = {
        n: judge.judge(source, bad, instruction).o for n, bad in _bad_targets(source, target, photos).items()
    }
    low["another category"] = judge.judge(source, target, TO_SKETCH).o
    assert max(low.values()) < 3.5, low


def test_portrait_and_motion_edits_are_local_to_the_person(photos: dict[str, np.ndarray]) -> None:
    source = photos["astronaut.png"]
    h, w = source.shape[:2]
    person = np.zeros((h, w), np.uint8)
    cv2.ellipse(person, (w // 2 - 20, h // 2 + 40), (150, 240), 0, 0, 360, 1, -1)
    blurred = np.where(person[..., None] > 0, source, cv2.GaussianBlur(source, (0, 0), 6))
    good = judge.judge(source, blurred, BLUR_BACKGROUND)
    assert good.details["intent"] == "portrait" and good.o > 7, good.details
    assert judge.judge(blurred, source, SHARPEN_BACKGROUND).o > 7
    assert judge.judge(source, blurred, SHARPEN_BACKGROUND).sc < 2  # the wrong way round
    assert judge.judge(source, source, BLUR_BACKGROUND).o < 2
    # A raised hand: the hand's patch moved up on the person, the rest of the frame kept.
    raised = source.copy()
    raised[330:390, 150:230] = source[360:420, 150:230]
    wave = {"en": "Make the person raise their right arm.", "zh": "让这个人举起右手。"}
    assert judge.judge(source, raised, wave).sc > 7
    mouth = {"en": "Make the person open their mouth.", "zh": "让这个人张开嘴。"}
    assert judge.judge(source, blurred, mouth).sc < 2  # half the frame changed for a mouth
    low = {n: judge.judge(source, bad, wave).o for n, bad in _bad_targets(source, raised, photos).items()}
    assert max(low.values()) < 3.5, low


def test_a_background_change_with_a_halo_of_the_old_background_scores_lower(
    photos: dict[str, np.ndarray],
) -> None:
    # A subject whose outline is known to the pixel: a disc of the astronaut's suit and face set into the
    # camera man's grey street (hand-drawn masks leave bits of the old background inside them).
    source = cv2.resize(photos["camera.png"], (400, 400))
    subject = np.zeros((400, 400), np.uint8)
    cv2.circle(subject, (200, 190), 110, 1, -1)
    source = np.where(subject[..., None] > 0, cv2.resize(photos["astronaut.png"], (400, 400)), source)
    instruction = {
        "en": "Change the background to a plain navy blue studio backdrop.",
        "zh": "把背景换成纯藏青色影棚背景。",
    }
    navy = np.array([30, 40, 90], np.uint8)
    clean = np.where(subject[..., None] > 0, source, navy)
    # A matte a few pixels too wide: a band of the old street around the subject.
    ring = cv2.dilate(subject, np.ones((11, 11), np.uint8)) > 0
    halo = np.where(ring[..., None], source, navy)
    good, bad = judge.judge(source, clean, instruction), judge.judge(source, halo, instruction)
    assert good.details["intent"] == "background" and good.o > 8, good.details
    assert bad.details["old_rim"] > good.details["old_rim"] + 0.1, (
        good.details["old_rim"],
        bad.details["old_rim"],
    )
    assert bad.o < good.o - 2, (good.o, bad.o)

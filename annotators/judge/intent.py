"""What an instruction asks for, read from its English and its Chinese: the kind of edit, and for global edits
which way each property should move.

The offline judge scores a pair against this reading, never against the task's own parameters, so a pair
whose instruction asks for another edit than the one made scores low. Both languages are read; when they ask
for different edits the instruction itself is broken (`consistent` is False).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from annotators.judge.motion import walks_named

# Global (tone) properties and the direction asked: +1 more / -1 less; time of day: "day", "dusk", "night".
_TONE_EN: list[tuple[str, str, int | str]] = [
    # Not a bare "lighter": "remove the lighter" is an object.
    (
        r"\b(brighten|brighter|lighten|(increase|raise) the exposure|overexpos)|"
        r"\bmake [\w ]{0,20} lighter(?=[.,!]|$)",
        "brightness",
        1,
    ),
    (r"\b(darken|darker|dim|(decrease|lower) the exposure|underexpos)", "brightness", -1),
    (r"\b(warmer|warm up|more golden|golden tone|warm tone)", "warmth", 1),
    (r"\b(cooler|cool down|bluer|colder|cool tone)", "warmth", -1),
    (r"\b(increase|raise|boost|more) (the )?(contrast|saturation)|more vivid|punchy|vibrant", "vivid", 1),
    (r"\b(lower|reduce|decrease|less) (the )?contrast|muted|faded|softer colours|washed", "vivid", -1),
    (r"\b(add|make)\b[^.]*\b(haze|hazy|fog|foggy|mist|misty)", "haze", 1),
    (r"\b(remove|clear|get rid of)\b[^.]*\b(haze|fog|mist)", "haze", -1),
    (r"\bremove\b[^.]*\brain", "rain", -1),  # before "falling rain": "remove the falling rain"
    (r"\b(add|make it|falling)\b[^.]*\brain|\bmake it rain", "rain", 1),
    (r"\bremove\b[^.]*\b(snow|snowflakes)", "snow", -1),
    (r"\b(add|make it|falling)\b[^.]*\b(snow|snowflakes)|\bmake it snow", "snow", 1),
    (r"\b(dusk|sunset|sun is setting|golden hour|evening)\b", "time", "dusk"),
    (r"\b(night|nighttime|at night)\b(?![^.]*\b(into|to) (day|daytime))", "time", "night"),
    (r"\b(daytime|midday|noon|during the day|into day|bright day)\b", "time", "day"),
]
_TONE_ZH: list[tuple[str, str, int | str]] = [
    (r"调亮|提亮|提高曝光|增加曝光|更亮|变亮", "brightness", 1),
    (r"调暗|降低曝光|减少曝光|更暗|变暗", "brightness", -1),
    (r"调暖|更暖|偏金黄|暖色调|色温.{0,2}暖", "warmth", 1),
    (r"调冷|更冷|偏蓝|冷色调|色温.{0,2}冷", "warmth", -1),
    (r"提高对比度|增加对比度|更鲜艳|饱和度更高|提高.{0,4}饱和度|冲击力", "vivid", 1),
    (r"降低对比度|减少对比度|更柔和|更淡|褪色|降低.{0,4}饱和度", "vivid", -1),
    (r"(加上|添加|增加|让.{0,6}).{0,4}(雾|霾)", "haze", 1),
    (r"(去除|去掉|去除画面中的|清除).{0,4}(雾|霾)", "haze", -1),
    (r"(去掉|去除|移除).{0,6}雨", "rain", -1),
    (r"(加上|添加|下起|下雨).{0,4}雨|下雨", "rain", 1),
    (r"(去掉|去除|移除).{0,6}雪", "snow", -1),
    (r"(加上|添加|飘落的|下雪).{0,4}雪|下雪", "snow", 1),
    (r"黄昏|日落|傍晚", "time", "dusk"),
    (r"夜晚|夜里|夜景(?!变成白天)|晚上", "time", "night"),
    (r"白天|正午|中午", "time", "day"),
]

# Words that make "turn the X into a Y" a change of how X looks (its material or colour), not a new object.
_LOOKS = (
    r"made of|wooden|wood|marble|metal|metallic|brushed|glass|golden|gold|stone|ceramic|porcelain|fabric|"
    r"cloth|leather|plastic|red|orange|yellow|green|blue|purple|violet|pink|brown|black|white|grey|gray|colou?r"
)

# Edit kinds other than tone, in the order they are tested (the first match wins).
_KINDS_EN: list[tuple[str, str]] = [
    ("text", r"[\"“”].+[\"“”].*\b(with|to|into)\b.*[\"“”]|\btext\b|\bwords?\b|\bsign reads?"),
    (
        "style",
        r"\b(sketch|drawing|painting|watercolou?r|cartoon|anime|pixel art|ink wash|engraving|"
        r"comic|illustration|oil paint|mosaic|pop art|style of|realistic photo|photograph)\b",
    ),
    # Blurring or sharpening the background behind a person is a portrait edit, not a new background.
    (
        "portrait",
        r"\b(blur|blurred|sharp|sharpen|sharper|depth of field|bokeh)\b[^.]*\bbackground\b|"
        r"\bbackground\b[^.]*\b(blur|blurred|sharp|sharper)\b",
    ),
    (
        "background",
        r"\b(change|replace|swap|make|turn|set|put)\b[^.]*\b(background|backdrop)\b|"
        r"\b(background|backdrop)\b[^.]*\b(to|into|with)\b",
    ),
    # A replacement names its objects by structure ("Replace the X with Y", "Put a Y where the X is", "Turn
    # the X into a Y"): read before colour and material, whose words may be the objects' names ("orange").
    (
        "replace",
        r"^(replace|swap) the\b|\bput an? [\w ]+ where the [\w ]+ (is|was|stands|sits)\b|"
        r"\binstead of\b|"
        r"\b(turn|change) the [\w ]+ into an? (?![\w ]*\b(" + _LOOKS + r")\b)",
    ),
    (
        "material",
        r"\b(made of|material|wooden|wood|marble|metal|metallic|brushed|glass|golden|gold|stone|"
        r"ceramic|porcelain|fabric|cloth|leather|plastic)\b",
    ),
    (
        "colour",
        r"\bcolou?r\b|\b(red|orange|yellow|green|blue|purple|violet|pink|brown|black|white|grey|gray|"
        r"cyan|teal|navy|beige|magenta|turquoise|maroon|olive|lavender|silver|coral|burgundy)\b",
    ),
    ("replace", r"\breplace\b|\bswap\b|\binstead of\b|\bturn the [\w ]+ into an? "),
    ("remove", r"\b(remove|delete|erase|take out|get rid of|eliminate)\b"),
    ("add", r"\b(add|put|place|insert)\b"),
    ("motion", r"\b(open|close|shut)\b[^.]*\b(eyes|mouth)\b|\b(tilt|turn)\b[^.]*\bhead\b"),
    (
        "portrait",
        r"\b(skin|blemish|acne|wrinkle|slim|slimmer|thinner face|teeth|eyes|retouch|beautif|"
        r"complexion|makeup|face)\b",
    ),
    ("motion", r"\b(raise|lift|lower|turn|wave|move|walk|step|bend|pose|arm|hand|head|leg|sit|stand)\b"),
]
_KINDS_ZH: list[tuple[str, str]] = [
    ("text", r"[\"“”「」].+[\"“”「」].*(改为|改成|换成|替换为)|文字"),
    (
        "style",
        r"素描|绘画|画作|水彩|卡通|动漫|像素|水墨|版画|油画|插画|铅笔画|彩铅|风格|真实照片|写实的?照片|"
        r"逼真的?照片|变成照片",
    ),
    ("portrait", r"虚化|景深|背景变(清晰|模糊)"),
    ("background", r"背景(换成|改成|变成|替换)|(换|改|替换)[^，。]*背景|(放到|放在)[^，。]*背景(前|中|里)"),
    ("replace", r"在[^，。]+的位置放|((?<!转)换成|替换为|替换成)(?![^，。]*(色|材质))"),
    ("material", r"材质|木质|木头|大理石|金属|拉丝|玻璃|金质|金色的|石头|石质|陶瓷|瓷|布料|皮革|塑料"),
    ("colour", r"颜色|色的|红色|橙色|黄色|绿色|蓝色|紫色|粉色|棕色|黑色|白色|灰色|青色|银色|酒红|珊瑚|米色"),
    ("replace", r"换成|替换|变成一?[只个辆张把]"),
    ("remove", r"移除|删除|删掉|去掉|擦除|去除|拿走"),
    ("add", r"添加|加上|加入|放[一上]|加一"),
    ("motion", r"闭上眼睛|睁开眼睛|张开嘴|闭上嘴|歪"),
    ("portrait", r"皮肤|磨皮|祛痘|瘦脸|牙齿|美白|眼睛|美颜|皱纹|脸"),
    ("motion", r"举起|抬起|放下|转头|转身|挥手|移动|走|弯腰|姿势|手臂|手|头|腿|坐|站"),
]


@dataclass(frozen=True)
class Intent:
    kind: str  # "tone", "remove", "add", "replace", "colour", "material", "style", "background", "text",
    # "motion", "portrait", or "unknown"
    tone: dict[str, int | str] = field(default_factory=dict)  # tone property -> direction (kind "tone")
    to_photo: bool = False  # style: a stylised picture made a realistic photo
    colour: str | None = None  # colour: the key of the named colour asked for (tasks/colours.py)
    style: str | None = None  # style: the family of the style named (see _STYLES)
    texts: tuple[str, str] | None = None  # text: the quoted old text and new text
    see_through: bool = False  # material: glass, whose shading is what lies behind it, not its form
    part: str | None = None  # motion: what moves ("face", "head", "arm", "body"); portrait: "background"
    walks: tuple[str, ...] = ()  # motion: the walks named ("left", "right", "towards", "away")
    direction: int = 0  # portrait background: +1 blurred, -1 made sharp
    consistent: bool = True  # English and Chinese ask for the same kind of edit

    @property
    def local(self) -> bool:
        return self.kind in ("remove", "add", "replace", "colour", "material", "text", "portrait")


def _tone(text: str, table: list[tuple[str, str, int | str]]) -> dict[str, int | str]:
    found: dict[str, int | str] = {}
    for pattern, prop, direction in table:
        if prop not in found and re.search(pattern, text):
            found[prop] = direction
    return found


def _kind(text: str, table: list[tuple[str, str]]) -> str:
    return next((kind for kind, pattern in table if re.search(pattern, text)), "unknown")


# Style families by what they do to a photo's pixels (the judge's cue for the direction of the edit);
# "colour pencil" before "pencil sketch".
_STYLES: list[tuple[str, str]] = [
    ("colour_pencil", r"colou?red pencil|colou?r pencil|彩色铅笔|彩铅"),
    ("sketch", r"sketch|pencil|engraving|etching|woodcut|ink wash|素描|铅笔|版画|水墨"),
    ("flat", r"cartoon|comic|anime|pixel|mosaic|pop art|卡通|动漫|漫画|像素"),
    ("watercolour", r"watercolou?r|水彩"),
    ("painting", r"oil paint|impasto|油画"),
]
_QUOTED = r"[\"“”「」『』]([^\"“”「」『』]+)[\"“”「」『』]"
# What a motion moves, by the words that name it; the first match wins.
_PARTS: list[tuple[str, str]] = [
    ("face", r"\b(eyes|mouth)\b|眼睛|嘴"),
    ("head", r"\bhead\b|头"),
    ("arm", r"\b(arm|hand|wave)\b|手"),
    ("body", r"."),
]


def _named_colour(text: str, english: bool) -> str | None:
    """The colour the instruction asks for: the colour name that ends last ("from brown to mint green")."""
    from tasks.colours import TARGETS  # the colour vocabulary (names in both languages and their sRGB)

    best: tuple[int, int, str] | None = None
    for colour in TARGETS:
        if english:
            names = (colour.en, colour.en.replace("grey", "gray"))
        else:
            names = (colour.zh, colour.zh.rstrip("色"))
        for name in names:
            pattern = rf"\b{re.escape(name)}\b" if english else re.escape(name)
            for match in re.finditer(pattern, text):
                candidate = (match.end(), len(name), colour.key)  # ends last; on a tie, the longer name
                best = candidate if best is None or candidate[:2] > best[:2] else best
    return best[2] if best else None


def _read(
    raw: str, tones: list[tuple[str, str, int | str]], kinds: list[tuple[str, str]], english: bool
) -> Intent:
    text = raw.lower()
    tone = _tone(text, tones)
    kind = _kind(text, kinds)
    # "Remove the haze", "add falling rain", "lower the contrast", "turn the scene into night" are tone edits
    # despite their verbs; a colour word in a tone instruction ("a more golden tone", "bluer") is the
    # tone's. "Brighten the eyes" stays a portrait edit, "replace the background" a background change.
    if tone and kind in ("remove", "add", "colour", "material", "motion", "unknown"):
        return Intent("tone", tone)
    if kind == "colour":
        return Intent(kind, colour=_named_colour(text, english))
    if kind == "style":
        to_photo = bool(re.search(r"realistic|真实|写实|photo(graph)?\b", text)) and not re.search(
            r"^(turn|make|convert) (this|the) (photo|picture|image)|这张照片", text
        )
        return Intent(kind, to_photo=to_photo, style=_kind(text, _STYLES))
    if kind == "material":
        return Intent(kind, see_through=bool(re.search(r"glass|crystal|transparent|玻璃|水晶|透明", text)))
    if kind == "text":
        quoted = re.findall(_QUOTED, raw)  # as written: OCR compares letters without case anyway
        return Intent(kind, texts=(quoted[0], quoted[-1]) if len(quoted) >= 2 else None)
    if kind == "motion":
        return Intent(kind, part=_kind(text, _PARTS), walks=walks_named(text))
    if kind == "portrait" and re.search(r"background|虚化|背景|景深|bokeh", text):
        sharp = re.search(r"\bsharp|remove the (background )?blur|清晰|去除背景虚化", text)
        return Intent(kind, part="background", direction=-1 if sharp else 1)
    return Intent(kind)


def read_instruction(instruction: dict[str, str]) -> Intent:
    """The edit `instruction` ({"en", "zh"}) asks for; the English reading when both languages give one."""
    english = _read(instruction.get("en", ""), _TONE_EN, _KINDS_EN, True)
    chinese = _read(instruction.get("zh", ""), _TONE_ZH, _KINDS_ZH, False)
    if english.kind == "unknown":
        return chinese
    if chinese.kind == "unknown":
        return english
    consistent = english.kind == chinese.kind and (
        english.kind != "tone" or set(english.tone.items()) & set(chinese.tone.items())
    )
    # What English leaves out (a colour name it does not know, quotes it lost) Chinese may give.
    return replace(
        english,
        colour=english.colour or chinese.colour,
        style=english.style if english.style != "unknown" else chinese.style,
        texts=english.texts or chinese.texts,
        walks=english.walks or chinese.walks,
        see_through=english.see_through or chinese.see_through,
        consistent=bool(consistent),
    )

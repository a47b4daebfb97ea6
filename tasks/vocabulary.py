"""Bilingual object vocabulary and position phrases used by the instruction templates.

The 80 COCO categories come first (names exactly as in COCO's instance annotations), then a few common
objects COCO lacks. Chinese names are the ordinary everyday words, not literal glosses.
"""

from __future__ import annotations

COCO_OBJECTS: dict[str, str] = {
    "person": "人",
    "bicycle": "自行车",
    "car": "汽车",
    "motorcycle": "摩托车",
    "airplane": "飞机",
    "bus": "公交车",
    "train": "火车",
    "truck": "卡车",
    "boat": "船",
    "traffic light": "红绿灯",
    "fire hydrant": "消防栓",
    "stop sign": "停车标志",
    "parking meter": "停车计时器",
    "bench": "长椅",
    "bird": "鸟",
    "cat": "猫",
    "dog": "狗",
    "horse": "马",
    "sheep": "羊",
    "cow": "牛",
    "elephant": "大象",
    "bear": "熊",
    "zebra": "斑马",
    "giraffe": "长颈鹿",
    "backpack": "背包",
    "umbrella": "雨伞",
    "handbag": "手提包",
    "tie": "领带",
    "suitcase": "行李箱",
    "frisbee": "飞盘",
    "skis": "滑雪板",
    "snowboard": "单板滑雪板",
    "sports ball": "球",
    "kite": "风筝",
    "baseball bat": "棒球棒",
    "baseball glove": "棒球手套",
    "skateboard": "滑板",
    "surfboard": "冲浪板",
    "tennis racket": "网球拍",
    "bottle": "瓶子",
    "wine glass": "酒杯",
    "cup": "杯子",
    "fork": "叉子",
    "knife": "刀",
    "spoon": "勺子",
    "bowl": "碗",
    "banana": "香蕉",
    "apple": "苹果",
    "sandwich": "三明治",
    "orange": "橙子",
    "broccoli": "西兰花",
    "carrot": "胡萝卜",
    "hot dog": "热狗",
    "pizza": "披萨",
    "donut": "甜甜圈",
    "cake": "蛋糕",
    "chair": "椅子",
    "couch": "沙发",
    "potted plant": "盆栽",
    "bed": "床",
    "dining table": "餐桌",
    "toilet": "马桶",
    "tv": "电视",
    "laptop": "笔记本电脑",
    "mouse": "鼠标",
    "remote": "遥控器",
    "keyboard": "键盘",
    "cell phone": "手机",
    "microwave": "微波炉",
    "oven": "烤箱",
    "toaster": "烤面包机",
    "sink": "水槽",
    "refrigerator": "冰箱",
    "book": "书",
    "clock": "钟",
    "vase": "花瓶",
    "scissors": "剪刀",
    "teddy bear": "泰迪熊",
    "hair drier": "吹风机",
    "toothbrush": "牙刷",
}

EXTRA_OBJECTS: dict[str, str] = {
    "rocket": "火箭",
    "camera": "相机",
    "tripod": "三脚架",
    "helmet": "头盔",
    "flag": "旗帜",
    "saucer": "碟子",
    "lamp": "台灯",
    "tree": "树",
    "sign": "标牌",
    "hat": "帽子",
    "glasses": "眼镜",
    "space shuttle": "航天飞机",
    "coin": "硬币",
    "lighter": "打火机",
    "lid": "盖子",
    "candy": "糖果",
    "pen": "笔",
    "squirrel": "松鼠",
    "flower": "花",
    "flower pot": "花盆",
    "toy whale": "玩具鲸鱼",
    "seashell": "贝壳",
    "butterfly": "蝴蝶",
    "pagoda": "宝塔",
    "lemon": "柠檬",
    "lime": "青柠",
    "kiwi": "猕猴桃",
}

# Objects a detector with an open vocabulary (Florence-2's <OD>) names and a removal can take away whole.
# Parts of other objects (wheels, windows, faces, hands), what people wear, and scenery (buildings, walls,
# sky) are deliberately absent: a name missing here is an object the annotator drops, with its reason.
DETECTED_OBJECTS: dict[str, str] = {
    "man": "男人",
    "woman": "女人",
    "boy": "男孩",
    "girl": "女孩",
    "child": "孩子",
    "baby": "婴儿",
    "mug": "马克杯",
    "coffee cup": "咖啡杯",
    "teapot": "茶壶",
    "kettle": "水壶",
    "jug": "水罐",
    "jar": "罐子",
    "plate": "盘子",
    "box": "盒子",
    "basket": "篮子",
    "bucket": "水桶",
    "bag": "包",
    "trash can": "垃圾桶",
    "candle": "蜡烛",
    "pillow": "枕头",
    "cushion": "靠垫",
    "picture frame": "相框",
    "poster": "海报",
    "table": "桌子",
    "coffee table": "茶几",
    "desk": "书桌",
    "stool": "凳子",
    "cabinet": "柜子",
    "shelf": "架子",
    "sunglasses": "太阳镜",
    "cap": "鸭舌帽",
    "balloon": "气球",
    "toy": "玩具",
    "football": "足球",
    "basketball": "篮球",
    "tennis ball": "网球",
    "doll": "玩偶",
    "flower": "花",
    "flowerpot": "花盆",
    "street light": "路灯",
    "traffic sign": "交通标志",
    "statue": "雕像",
    "sculpture": "雕塑",
    "tent": "帐篷",
    "van": "面包车",
    "taxi": "出租车",
    "scooter": "滑板车",
    "helicopter": "直升机",
    "butterfly": "蝴蝶",
    "duck": "鸭子",
    "chicken": "鸡",
    "goose": "鹅",
    "fish": "鱼",
    "deer": "鹿",
    "monkey": "猴子",
    "lion": "狮子",
    "tiger": "老虎",
    "rabbit": "兔子",
    "strawberry": "草莓",
    "grape": "葡萄",
    "lemon": "柠檬",
    "tomato": "西红柿",
    "bread": "面包",
    "cookie": "饼干",
    "egg": "鸡蛋",
    "pencil": "铅笔",
    "headphones": "耳机",
    "microphone": "麦克风",
    "guitar": "吉他",
    "piano": "钢琴",
    "drum": "鼓",
    "watch": "手表",
    "speaker": "音箱",
    "monitor": "显示器",
    "tablet computer": "平板电脑",
}

OBJECTS: dict[str, str] = {**COCO_OBJECTS, **EXTRA_OBJECTS, **DETECTED_OBJECTS}

# Other names a detector gives the same objects (Open Images / Objects365 wording, British spelling...).
ALIASES: dict[str, str] = {
    "human": "person",
    "ball": "sports ball",
    "people": "person",
    "mobile phone": "cell phone",
    "smartphone": "cell phone",
    "telephone": "cell phone",
    "television": "tv",
    "sofa": "couch",
    "houseplant": "potted plant",
    "plant pot": "flowerpot",
    "computer keyboard": "keyboard",
    "computer mouse": "mouse",
    "computer monitor": "monitor",
    "laptop computer": "laptop",
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "aircraft": "airplane",
    "bike": "bicycle",
    "ship": "boat",
    "doughnut": "donut",
    "drinking glass": "wine glass",
    "glass": "wine glass",
    "tea cup": "cup",
    "teacup": "cup",
    "bin": "trash can",
    "waste container": "trash can",
    "wastebasket": "trash can",
    "lantern": "lamp",
    "table lamp": "lamp",
    "street lamp": "street light",
    "teddy": "teddy bear",
    "stuffed toy": "teddy bear",
    "ipad": "tablet computer",
    "tablet": "tablet computer",
    "loudspeaker": "speaker",
    "headphone": "headphones",
    "wristwatch": "watch",
    "alarm clock": "clock",
    "wall clock": "clock",
    "luggage": "suitcase",
    "puppy": "dog",
    "kitten": "cat",
    "pot plant": "potted plant",
}

# Names a detector gives to what a removal cannot take away whole: parts of people, vehicles and buildings,
# what people wear, scenery. An object so named is dropped at once (no point asking its region again).
UNREMOVABLE: frozenset[str] = frozenset(
    {
        "human face", "human head", "human hair", "human hand", "human arm", "human leg", "human eye",
        "human nose", "human mouth", "human ear", "human body", "face", "head", "hair", "hand", "arm", "leg",
        "clothing", "footwear", "shirt", "jacket", "dress", "trousers", "jeans", "shoe", "sock",
        "wheel", "tire", "license plate", "window", "door", "roof", "wall", "floor", "ceiling", "stairs",
        "building", "house", "skyscraper", "tower", "road", "street", "sidewalk", "sky", "cloud", "grass",
        "water", "sea", "river", "mountain", "land vehicle", "vehicle", "furniture", "food", "tableware",
        "kitchen utensil", "fashion accessory", "plant", "animal", "mammal", "carnivore", "person's face",
    }
)  # fmt: skip

_ARTICLES = ("a ", "an ", "the ")


def _singular(word: str) -> str:
    """English plural -> singular for the vocabulary's regular nouns ("cups", "boxes", "butterflies")."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 3:
        return word[:-1]
    return word


def _lookup(phrase: str) -> str | None:
    for candidate in (phrase, _singular(phrase)):
        if candidate in OBJECTS:
            return candidate
        if candidate in ALIASES:
            return ALIASES[candidate]
    return None


def vocabulary_key(name: str) -> str | None:
    """The vocabulary key a free-text object name stands for, or None when it names nothing known.

    "Coffee cup" -> "coffee cup", "a white mugs" -> "mug", "mobile phone" -> "cell phone": the whole phrase
    first, then without its leading words (adjectives: "red car" -> "car").
    """
    phrase = " ".join(name.lower().replace("-", " ").replace("_", " ").split()).strip(" .,;:!?")
    for article in _ARTICLES:
        if phrase.startswith(article):
            phrase = phrase[len(article) :]
    words = phrase.split()
    for start in range(len(words)):
        key = _lookup(" ".join(words[start:]))
        if key is not None:
            return key
    return None


# English names whose instructions read better without the category's plural-looking form.
_EN_DISPLAY = {"skis": "pair of skis", "tv": "TV", "sports ball": "ball", "cell phone": "phone"}


def object_names(category: str) -> dict[str, str]:
    """The English and Chinese names of a category; unknown categories fall back to the raw name."""
    key = category.strip().lower()
    zh = OBJECTS.get(key)
    if zh is None:
        return {"en": key, "zh": key}
    return {"en": _EN_DISPLAY.get(key, key), "zh": zh}


# Names that take no plain "a"/"an": things that come in pairs (plural in form) and mass nouns.
_INDEFINITE = {
    "scissors": "a pair of scissors",
    "skis": "a pair of skis",
    "glasses": "a pair of glasses",
    "sunglasses": "a pair of sunglasses",
    "headphones": "a pair of headphones",
    "broccoli": "a head of broccoli",
    "luggage": "a piece of luggage",
    "people": "some people",
}


def with_article(name: str) -> str:
    """'an apple', 'a cup', 'a pair of scissors': the indefinite article by the first letter (good for this
    vocabulary), or the phrase a pair noun or a mass noun takes."""
    if name in _INDEFINITE:
        return _INDEFINITE[name]
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def counted_singly(name: str) -> bool:
    """Whether one of ``name`` is counted as one thing (the Chinese 一个 fits it): not a pair or a mass."""
    return name not in _INDEFINITE


# Position of a box in the frame, on a 3x3 grid of the image: (column, row) -> phrases.
_POSITIONS: dict[tuple[int, int], dict[str, str]] = {
    (0, 0): {"en": "at the top left", "zh": "左上角"},
    (1, 0): {"en": "at the top", "zh": "上方"},
    (2, 0): {"en": "at the top right", "zh": "右上角"},
    (0, 1): {"en": "on the left", "zh": "左侧"},
    (1, 1): {"en": "in the middle", "zh": "中间"},
    (2, 1): {"en": "on the right", "zh": "右侧"},
    (0, 2): {"en": "at the bottom left", "zh": "左下角"},
    (1, 2): {"en": "at the bottom", "zh": "下方"},
    (2, 2): {"en": "at the bottom right", "zh": "右下角"},
}


def position_phrase(bbox: tuple[int, int, int, int], width: int, height: int) -> dict[str, str]:
    """Where the box's centre falls on a 3x3 grid of the image, in both languages."""
    cx = (bbox[0] + bbox[2]) / 2 / width
    cy = (bbox[1] + bbox[3]) / 2 / height
    col = min(int(cx * 3), 2)
    row = min(int(cy * 3), 2)
    return _POSITIONS[(col, row)]

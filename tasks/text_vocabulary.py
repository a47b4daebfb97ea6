"""Replacement text for text_modification: a bilingual word list grouped by meaning, and numbers, prices
and dates rewritten in their own format.

A word is replaced by another of its group (an almond by a walnut, OPEN by CLOSED, Monday by Friday), in
its own language or translated (OPEN -> 营业中), so that the edited sign or label still reads naturally.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

# group -> (English, Chinese) pairs. Chinese entries are the words printed on real signs and packs.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "sign": (
        ("open", "营业中"),
        ("closed", "休息"),
        ("sale", "特价"),
        ("exit", "出口"),
        ("entrance", "入口"),
        ("push", "推"),
        ("pull", "拉"),
        ("welcome", "欢迎光临"),
        ("free", "免费"),
        ("new", "新品"),
        ("parking", "停车场"),
        ("toilet", "洗手间"),
        ("stop", "停"),
        ("danger", "危险"),
        ("caution", "小心"),
        ("private", "私人"),
        ("reserved", "预留"),
        ("office", "办公室"),
        ("home", "家用"),
        ("shop", "商店"),
        ("hotel", "酒店"),
        ("bank", "银行"),
        ("school", "学校"),
    ),
    "food": (
        ("almond", "杏仁"),
        ("walnut", "核桃"),
        ("hazelnut", "榛子"),
        ("chocolate", "巧克力"),
        ("lemon", "柠檬"),
        ("orange", "橙子"),
        ("apple", "苹果"),
        ("cherry", "樱桃"),
        ("vanilla", "香草"),
        ("coconut", "椰子"),
        ("honey", "蜂蜜"),
        ("ginger", "生姜"),
        ("peanut", "花生"),
        ("strawberry", "草莓"),
        ("coffee", "咖啡"),
        ("tea", "茶"),
        ("milk", "牛奶"),
        ("butter", "黄油"),
        ("rice", "大米"),
        ("basmati", "香米"),
        ("jasmine", "茉莉"),
        ("cookies", "饼干"),
        ("biscuits", "饼干"),
        ("bread", "面包"),
        ("cheese", "奶酪"),
    ),
    "country": (
        ("italy", "意大利"),
        ("france", "法国"),
        ("spain", "西班牙"),
        ("japan", "日本"),
        ("china", "中国"),
        ("germany", "德国"),
        ("mexico", "墨西哥"),
        ("greece", "希腊"),
        ("canada", "加拿大"),
        ("brazil", "巴西"),
        ("india", "印度"),
        ("korea", "韩国"),
        ("england", "英格兰"),
    ),
    "colour": (
        ("red", "红色"),
        ("blue", "蓝色"),
        ("green", "绿色"),
        ("yellow", "黄色"),
        ("black", "黑色"),
        ("white", "白色"),
        ("purple", "紫色"),
        ("pink", "粉色"),
        ("brown", "棕色"),
        ("grey", "灰色"),
    ),
    "day": (
        ("monday", "星期一"),
        ("tuesday", "星期二"),
        ("wednesday", "星期三"),
        ("thursday", "星期四"),
        ("friday", "星期五"),
        ("saturday", "星期六"),
        ("sunday", "星期日"),
    ),
    "month": (
        ("january", "一月"),
        ("february", "二月"),
        ("march", "三月"),
        ("april", "四月"),
        ("may", "五月"),
        ("june", "六月"),
        ("july", "七月"),
        ("august", "八月"),
        ("september", "九月"),
        ("october", "十月"),
        ("november", "十一月"),
        ("december", "十二月"),
    ),
    "quality": (
        ("crisp", "酥脆"),
        ("soft", "柔软"),
        ("sweet", "香甜"),
        ("fresh", "新鲜"),
        ("hot", "热"),
        ("cold", "冷"),
        ("large", "大"),
        ("small", "小"),
        ("classic", "经典"),
        ("organic", "有机"),
        ("natural", "天然"),
        ("premium", "优质"),
    ),
    "direction": (
        ("left", "左"),
        ("right", "右"),
        ("north", "北"),
        ("south", "南"),
        ("east", "东"),
        ("west", "西"),
        ("up", "上"),
        ("down", "下"),
        ("in", "进"),
        ("out", "出"),
    ),
    "unit": (("net", "净重"), ("weight", "重量"), ("price", "价格"), ("total", "合计")),
}

# Either language's word -> (group, index in the group).
_ENGLISH = {en: (g, i) for g, pairs in GROUPS.items() for i, (en, _) in enumerate(pairs)}
_CHINESE = {zh: (g, i) for g, pairs in GROUPS.items() for i, (_, zh) in enumerate(pairs)}

_CODE = re.compile(r"^([A-Z]{1,4})(\d{2,6})$")  # part numbers, plates, component labels: C68, YSH9937
_NUMBER = re.compile(r"^([$€£¥]?)(\d+(?:[.,]\d+)*)(%?)$")
_DATES = (
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "%Y-%m-%d"),
    (re.compile(r"^\d{2}/\d{2}/\d{4}$"), "%d/%m/%Y"),
    (re.compile(r"^\d{2}\.\d{2}\.\d{4}$"), "%d.%m.%Y"),
    (re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$"), "%Y年%m月%d日"),
)


def match_case(word: str, like: str) -> str:
    """``word`` written in the case style of ``like``: UPPER, Title or lower."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def lexicon_entry(word: str) -> tuple[str, int, str] | None:
    """(group, index, language) of a word in the list, or None."""
    if word.lower() in _ENGLISH:
        group, index = _ENGLISH[word.lower()]
        return group, index, "en"
    if word in _CHINESE:
        group, index = _CHINESE[word]
        return group, index, "zh"
    return None


def chinese_words_in(text: str) -> list[tuple[int, str]]:
    """(start, word) of every Chinese word of the list inside ``text``, longest first at each place."""
    found = []
    for zh in sorted(_CHINESE, key=len, reverse=True):
        start = text.find(zh)
        while start >= 0:
            if not any(s <= start < s + len(w) for s, w in found):
                found.append((start, zh))
            start = text.find(zh, start + 1)
    return sorted(found)


def word_replacements(word: str, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(kind, new text) for a word of the list: another word of its group in the same language, and its
    translation's group-mate in the other language (kinds: en_en, zh_zh, en_zh, zh_en)."""
    entry = lexicon_entry(word)
    if entry is None:
        return []
    group, index, language = entry
    pairs = GROUPS[group]
    others = [
        i
        for i in range(len(pairs))
        if i != index and pairs[i][0] != pairs[index][0] and pairs[i][1] != pairs[index][1]
    ]
    if not others:
        return []
    same = pairs[int(rng.choice(others))]
    out = []
    if language == "en":
        out.append(("en_en", match_case(same[0], word)))
        out.append(("en_zh", pairs[index][1]))  # the word translated: OPEN -> 营业中
    else:
        out.append(("zh_zh", same[1]))
        out.append(("zh_en", same[0].upper() if len(same[0]) <= 4 else same[0].capitalize()))
    return out


def free_replacement(word: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """("en_en_free", a word of the list about as long as ``word``, in its case) for an English word the list
    does not know (a brand, a name): the instruction quotes both, which is what a text edit needs."""
    if not (word.isascii() and word.isalpha() and len(word) >= 3) or lexicon_entry(word):
        return None
    close = sorted(en for en in _ENGLISH if abs(len(en) - len(word)) <= 1 and en != word.lower())
    if not close:
        return None
    return "en_en_free", match_case(close[int(rng.integers(len(close)))], word)


def number_replacement(token: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """(kind, new text) for a number, price, date or code token in its own format, or None for others."""
    code = _CODE.match(token)
    if code:
        letters, digits = code.groups()
        new = _new_digits(digits, rng)
        return ("code", letters + new) if new else None
    for pattern, form in _DATES:
        if pattern.match(token):
            try:
                day = dt.datetime.strptime(token, form)
            except ValueError:
                return None
            shifted = day + dt.timedelta(days=int(rng.integers(3, 300)) * (1 if rng.random() < 0.5 else -1))
            text = shifted.strftime(form)
            if "年" in form:  # the Chinese form writes month and day without leading zeros
                text = f"{shifted.year}年{shifted.month}月{shifted.day}日"
            return "date", text
    match = _NUMBER.match(token)
    if not match:
        return None
    currency, digits, percent = match.groups()
    new = _new_digits(digits, rng)
    if new is None:
        return None
    return ("price" if currency else "number"), f"{currency}{new}{percent}"


def _new_digits(digits: str, rng: np.random.Generator) -> str | None:
    """Other digits in the same places (separators kept, no new leading zero)."""
    for _ in range(20):
        new = "".join(
            str(int(rng.integers(1 if i == 0 and ch != "0" else 0, 10))) if ch.isdigit() else ch
            for i, ch in enumerate(digits)
        )
        if new != digits:
            return new
    return None

"""Seeded generators of plausible Chinese names and of personal data that cannot be real.

* **Phones** are ``1990000xxxx``: eleven digits that pass the usual mobile-number checks, all from
  one ten-thousand block that geowarn reserves for fiction (China has no official drama range, so
  the block is a project convention: never send real messages to ``1990000…``; see
  ``FAKE_PHONE_PREFIX``).
* **ID numbers** (居民身份证号码, GB 11643-1999) have a valid check digit, but two markers make
  them plainly synthetic: every birth date is 1 January and the order code (顺序码) is ``000``,
  which is never issued.
"""

from __future__ import annotations

import numpy as np

FAKE_PHONE_PREFIX = "1990000"

SURNAMES = "陈林黄张李王吴刘蔡杨郑许谢郭洪曾邱廖赖徐周叶苏庄吕江何余罗高潘朱钟游詹卢施彭魏翁宋"
MALE_CHARS = "明华建国文伟强军平志荣福金水生清德春祥辉勇海长永源发兴贵良忠宏斌杰晓承俊财炳"
FEMALE_CHARS = "秀英兰珍美玉丽芳娟凤梅琴霞燕萍云红莲花娇月桂娥素惠妹雪琼碧"
VILLAGE_FIRST = "溪上下前后东西南北大小新石洋岭坪竹桥湖林龙凤岩山黄梅桃松杉荷青白马鹤兰高半长平碧田"
VILLAGE_SECOND = "口洋头坑坪岭里厝墘山岗湾阳溪田垅坂洲亭埕尾峰塘园墩"
COMMUNITY_FIRST = "东西南北新前后城胜和兴三文华龙凤"
COMMUNITY_SECOND = "门街城华安平兴隆保亭湖山溪园桥苑"

_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"


def gb11643_check_digit(first17: str) -> str:
    """The check digit of a citizen ID number (GB 11643-1999, ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need the first 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


class NameGenerator:
    """Names, phones and ID numbers drawn from one seeded generator, never repeating a phone."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        ranks = np.arange(1, len(SURNAMES) + 1, dtype=float)
        self._surname_p = (1 / np.sqrt(ranks)) / (1 / np.sqrt(ranks)).sum()
        self._phones = [f"{FAKE_PHONE_PREFIX}{n:04d}" for n in rng.permutation(10_000)]
        self._villages: set[str] = set()

    def surname(self) -> str:
        return str(SURNAMES[int(self.rng.choice(len(SURNAMES), p=self._surname_p))])

    def given(self, female: bool) -> str:
        chars = FEMALE_CHARS if female else MALE_CHARS
        n = 2 if self.rng.random() < 0.7 else 1
        return "".join(chars[int(i)] for i in self.rng.integers(0, len(chars), n))

    def person(self, female: bool | None = None, surname: str | None = None) -> tuple[str, bool]:
        """A full name and whether the person is a woman."""
        f = bool(self.rng.random() < 0.5) if female is None else female
        return (surname or self.surname()) + self.given(f), f

    def phone(self) -> str:
        if not self._phones:
            raise RuntimeError("the fake phone block is exhausted")
        return self._phones.pop()

    def id_number(self, county_code: str, birth_year: int) -> str:
        """A synthetic ID number: valid check digit, born 1 January, order code 000."""
        first17 = f"{county_code}{birth_year:04d}0101000"
        return first17 + gb11643_check_digit(first17)

    def place(self, community: bool) -> str:
        """A new village (``溪口村``) or community (``东门社区``) name, unique within the generator."""
        first, second = (COMMUNITY_FIRST, COMMUNITY_SECOND) if community else (VILLAGE_FIRST, VILLAGE_SECOND)
        suffix = "社区" if community else "村"
        for _ in range(10_000):
            a = first[int(self.rng.integers(len(first)))]
            b = second[int(self.rng.integers(len(second)))]
            name = a + b + suffix
            if a != b and name not in self._villages:
                self._villages.add(name)
                return name
        raise RuntimeError("ran out of place names")

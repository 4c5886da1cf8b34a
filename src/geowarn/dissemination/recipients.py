"""Who must be told (pure: no I/O): merge candidates into one entry per person and choose channels.

Rules (DOMAIN.md, level responses; 自然资源部《地质灾害气象风险预警工作指南》; 群测群防 practice):

* A site alert goes to the site's responsible person and monitor at every level; from yellow up to the
  township's duty officials; from orange up to the threatened residents of the site's danger zone and
  to the county's duty officials and department contacts.
* A regional product goes, from blue up, to duty officials of the townships in the warning area and
  the county; from yellow up to the responsible persons and monitors of the sites in the area and to
  department contacts; from orange up to the threatened residents of those sites and of risk zones
  inside the area.
* One person is one entry even when the registers name them several times (a monitor who also lives in
  a threatened household): entries are merged by phone number (digits only), otherwise by record key;
  every reason is kept.
* Quiet hours of a person's preference hold back blue and yellow messages until they end; they never
  apply at orange and red. From orange up every person with a phone gets an SMS whatever the
  preference, and at red residents and responsible persons also get a voice call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.warning.levels import Level

CST = dt.timezone(dt.timedelta(hours=8))

#: Audiences in the order of precedence when one person is reached in several capacities.
AUDIENCES = ("responsible", "official", "department", "resident", "group")
_RANK = {a: i for i, a in enumerate(AUDIENCES)}
AUDIENCE_ZH = {
    "responsible": "责任人/监测人",
    "official": "值班人员",
    "department": "部门联络人",
    "resident": "受威胁群众",
    "group": "工作群",
}
_DIGITS = re.compile(r"\D")


@dataclass(slots=True)
class Candidate:
    """One reason to tell one register record (a person, a resident, a household head)."""

    key: str  # person:<id> / resident:<id> / household:<id> / endpoint:<id>
    name: str
    phone: str | None
    unit_code: str
    audience: str
    reason: str
    household_id: int | None = None
    shelter_id: int | None = None


@dataclass(slots=True)
class Recipient:
    """One person with every reason and everything needed to reach them."""

    key: str
    name: str
    phone: str | None
    unit_code: str
    audience: str
    reasons: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # every register record merged into this person
    household_id: int | None = None
    shelter_id: int | None = None


@dataclass(frozen=True, slots=True)
class Pref:
    channels: tuple[str, ...] = ()
    quiet_start: str | None = None
    quiet_end: str | None = None
    email: str | None = None
    language: str = "zh-CN"


def normalise_phone(phone: str | None) -> str | None:
    """Digits only; a leading 86 country code of an 11-digit mobile number is dropped."""
    if not phone:
        return None
    if phone.isdigit() and len(phone) == 11:  # the common case, without the regular expression
        return phone
    digits = _DIGITS.sub("", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits or None


def _identified(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Candidate fields with the phone normalised and the identity (phone, else key) in front."""
    for key, name, phone, unit_code, audience, reason, household_id, shelter_id in rows:
        if not phone:
            phone = None
        elif not (len(phone) == 11 and phone.isdigit()):  # normalise_phone's own fast case, inlined
            phone = normalise_phone(phone)
        yield phone or key, key, name, phone, unit_code, audience, reason, household_id, shelter_id


class Merger:
    """:func:`merge` one candidate at a time, given as fields: no :class:`Candidate` need be made (the
    site people of a province's red warning are sixty thousand)."""

    __slots__ = ("_by",)

    def __init__(self) -> None:
        self._by: dict[str, Recipient] = {}  # by phone (digits only) or, without one, by key (has a colon)

    def add_many(self, rows: Iterable[tuple[Any, ...]]) -> Merger:
        """Candidates as tuples of :class:`Candidate`'s eight fields, in order."""
        return self.add_known(_identified(rows))

    def add_known(self, rows: Iterable[tuple[Any, ...]]) -> Merger:
        """Candidates whose phone is normalised already, as ``(identity, *Candidate's eight fields)``:
        the identity is the phone, or the key when there is none (a key has a colon, a phone none)."""
        by, rank = self._by, _RANK
        for ident, key, name, phone, unit_code, audience, reason, household_id, shelter_id in rows:
            r = by.get(ident)
            if r is None:
                by[ident] = Recipient(key, name, phone, unit_code, audience, [reason], [key], household_id, shelter_id)
                continue
            if reason not in r.reasons:
                r.reasons.append(reason)
            if key not in r.keys:
                r.keys.append(key)
            if rank.get(audience, 99) < rank.get(r.audience, 99):
                r.audience = audience
                if not key.startswith(("resident:", "household:")):
                    r.key, r.name, r.unit_code = key, name, unit_code
            if r.household_id is None and household_id is not None:
                r.household_id, r.shelter_id = household_id, shelter_id
        return self

    def extend(self, candidates: Iterable[Candidate]) -> Merger:
        return self.add_many(
            (c.key, c.name, c.phone, c.unit_code, c.audience, c.reason, c.household_id, c.shelter_id)
            for c in candidates
        )

    def recipients(self) -> list[Recipient]:
        return list(self._by.values())


def merge(candidates: Iterable[Candidate]) -> list[Recipient]:
    """One recipient per person (same phone = same person), reasons de-duplicated in order."""
    return Merger().extend(candidates).recipients()


RESIDENT_KINDS = ("household", "resident")  # Residents.kind 0 / 1


@dataclass(slots=True)
class Residents:
    """Threatened household heads and residents as columns (the regional fast path: a red warning over a
    province names a million people, and one Python object per person costs seconds).

    Used twice: as candidates (one row per register record, in the order :func:`merge` would see them)
    and, after :func:`merge_residents`, as recipients (one row per person, the first record of the person
    giving key, name, unit, household and shelter, exactly as :func:`merge` does).
    """

    kind: npt.NDArray[np.int8]  # index into RESIDENT_KINDS
    record_id: npt.NDArray[np.int64]
    name: npt.NDArray[Any]  # object: str
    phone: npt.NDArray[Any]  # object: str or None (normalised once merged)
    unit_code: npt.NDArray[Any]  # object: str
    household_id: npt.NDArray[np.int64]
    shelter_id: npt.NDArray[np.int64]  # -1: none
    reason: npt.NDArray[np.int64]  # index into ``texts``
    texts: list[str]
    #: row -> (reasons, keys) of a person named by several records (a shared phone)
    merged: Mapping[int, tuple[list[str], list[str]]] = field(default_factory=dict)
    #: candidates only, optional: phones already normalised (None for none) and numbered, one code per
    #: distinct number (-1: none), which makes merging a sort of integers
    phone_code: npt.NDArray[np.int64] | None = None
    phone_table: npt.NDArray[np.str_] | None = None  # the numbers, sorted: ``phone_table[code]``

    def __len__(self) -> int:
        return len(self.record_id)

    def keys(self) -> list[str]:
        """The person key of every row (``household:<id>`` / ``resident:<id>``)."""
        return record_keys(self.kind, self.record_id)

    def key(self, i: int) -> str:
        return f"{RESIDENT_KINDS[int(self.kind[i])]}:{int(self.record_id[i])}"

    def reasons_of(self, i: int) -> list[str]:
        got = self.merged.get(i)
        return list(got[0]) if got else [self.texts[int(self.reason[i])]]

    def keys_of(self, i: int) -> list[str]:
        got = self.merged.get(i)
        return list(got[1]) if got else [self.key(i)]

    def recipient(self, i: int) -> Recipient:
        shelter = int(self.shelter_id[i])
        return Recipient(
            self.key(i),
            str(self.name[i]),
            self.phone[i],
            str(self.unit_code[i]),
            "resident",
            self.reasons_of(i),
            self.keys_of(i),
            int(self.household_id[i]),
            shelter if shelter >= 0 else None,
        )

    def recipients(self) -> list[Recipient]:
        """Every row as a :class:`Recipient` (the slow, per-object form; for small sets and tests)."""
        return [self.recipient(i) for i in range(len(self))]


def _normalised(phones: npt.NDArray[Any]) -> npt.NDArray[np.str_]:
    """:func:`normalise_phone` of every phone, vectorised ('' for none): most are already 11 digits."""
    out: npt.NDArray[np.str_] = np.where(np.equal(phones, np.array(None, dtype=object)), "", phones).astype(str)
    if not len(out):
        return out
    fix = np.flatnonzero(~((np.char.str_len(out) == 11) & np.char.isdigit(out)) & (out != ""))
    if len(fix):  # never longer than the original: digits only
        out[fix] = [normalise_phone(v) or "" for v in out[fix].tolist()]
    return out


def _codes_of(phones: list[str], table: npt.NDArray[np.str_] | None) -> npt.NDArray[np.int64]:
    """Codes of the normalised ``phones`` that ``table`` (sorted, distinct) holds."""
    if not phones or table is None or not len(table):
        return np.array([], dtype=np.int64)
    wanted = np.array(phones, dtype=str)
    at = np.minimum(np.searchsorted(table, wanted), len(table) - 1)
    return at[table[at] == wanted]


def record_keys(kind: npt.NDArray[np.int8], record_id: npt.NDArray[np.int64]) -> list[str]:
    """``household:<id>`` / ``resident:<id>`` of each row (one ``str.format`` per kind, mapped: the
    fastest way to make a million of them)."""
    out = np.empty(len(kind), dtype=object)
    for k, name in enumerate(RESIDENT_KINDS):
        rows = kind == k
        out[rows] = list(map(f"{name}:{{}}".format, record_id[rows].tolist()))
    return out.tolist()


class MergedRecords(Mapping[int, tuple[list[str], list[str]]]):
    """Row -> (reasons, keys) of each person named by several records (a shared phone), made when read.

    A province's households often share a phone with one of their residents: a quarter of a million
    such persons, whose lists are formatting, not resolution. They are made together on the first
    full read (flat lists cut into slices, about 0.5 s for 250,000 persons; a Python loop per
    person would cost seconds), or one at a time by row. Reasons appear once each, in the order first
    met; keys every time.

    ``rows`` are the persons' rows; ``kind``, ``record_id`` and ``reason`` hold the records of
    consecutive persons, in candidate order, ``sizes`` how many each person has.
    """

    def __init__(self, rows: list[int], kind: Any, record_id: Any, reason: Any, sizes: Any, texts: list[str]) -> None:
        self._group = dict(zip(rows, range(len(rows)), strict=True))
        self._kind, self._id, self._reason, self._sizes, self._texts = kind, record_id, reason, sizes, texts
        ends = np.cumsum(sizes)
        self._start, self._end = (ends - sizes).tolist(), ends.tolist()
        self._all: dict[int, tuple[list[str], list[str]]] | None = None

    def __len__(self) -> int:
        return len(self._group)

    def __iter__(self) -> Iterator[int]:
        return iter(self._group)

    def __contains__(self, row: object) -> bool:
        return row in self._group

    def __getitem__(self, row: int) -> tuple[list[str], list[str]]:
        if self._all is not None:
            return self._all[row]
        g = self._group[row]
        a, b = self._start[g], self._end[g]
        reasons: list[str] = []
        for i in self._reason[a:b].tolist():
            if self._texts[i] not in reasons:
                reasons.append(self._texts[i])
        return reasons, record_keys(self._kind[a:b], self._id[a:b])

    def materialised(self) -> dict[int, tuple[list[str], list[str]]]:
        """Every entry, made at once."""
        if self._all is None:
            texts, sizes = self._texts, self._sizes
            gid = np.repeat(np.arange(len(sizes)), sizes)
            _, firsts = np.unique(gid * max(len(texts), 1) + self._reason, return_index=True)
            firsts.sort()  # the first meeting of each (person, reason), in record order
            flat_reasons = [texts[i] for i in self._reason[firsts].tolist()]
            r_end = np.cumsum(np.bincount(gid[firsts], minlength=len(sizes))).tolist()
            flat_keys = record_keys(self._kind, self._id)
            reasons = [flat_reasons[a:b] for a, b in zip([0, *r_end[:-1]], r_end, strict=True)]
            keys = [flat_keys[a:b] for a, b in zip(self._start, self._end, strict=True)]
            self._all = dict(zip(self._group, zip(reasons, keys, strict=True), strict=True))
        return self._all

    def items(self) -> ItemsView[int, tuple[list[str], list[str]]]:
        return self.materialised().items()

    def values(self) -> ValuesView[tuple[list[str], list[str]]]:
        return self.materialised().values()


def _groups(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
    """Equal values as groups, with one stable sort (``np.unique`` with index, inverse and counts, plus
    an argsort of the inverse, would sort twice): the distinct values (sorted), the positions grouped
    by value and in order within a group, each group's first position, its start in that order and
    its size."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts, sizes = group_bounds(ordered)
    return ordered[starts], order, order[starts], starts, sizes


def merge_positions(n_households: int, hpos: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Where each household head and each resident stands in merge order (per household, its head,
    then its residents), given each resident's household position ``hpos`` (sorted by household)."""
    per = np.bincount(hpos, minlength=n_households)
    before = np.cumsum(per) - per  # residents of earlier households
    head_at = np.arange(n_households) + before
    return head_at, head_at[hpos] + 1 + (np.arange(len(hpos)) - before[hpos])


def group_bounds(ordered: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Where each run of equal values of ``ordered`` (sorted) starts, and its length."""
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    return starts, np.diff(np.append(starts, len(ordered)))


#: Candidates sharing a phone, as :func:`_groups` gives them (indices into the candidates).
Groups = tuple[
    npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]


def merge_residents(
    persons: list[Recipient], cands: Residents, groups: Groups | None = None
) -> tuple[list[Recipient], Residents]:
    """:func:`merge` of ``persons`` (already merged) followed by the resident candidates ``cands``, columnar.

    A resident with the phone of a person is folded into that person (reasons and keys appended, the
    household filled in); residents sharing a phone are one row, the first record naming them. The
    result equals ``merge([*person candidates, *resident candidates])`` with the resident rows kept as
    columns (checked against :func:`merge` in tests/dissemination/test_fast_path.py).

    ``groups`` (with coded phones only): the candidates with a phone already grouped, as
    :func:`_groups` would group them (the directory keeps the whole register grouped, so a warning
    only filters it instead of sorting a million codes).
    """
    person_phones = [r.phone for r in persons if r.phone]
    if cands.phone_code is not None:  # normalised and numbered already (the directory)
        has = cands.phone_code >= 0
        if groups is None:
            pos = np.flatnonzero(has)
            key, order, first, starts, cnt = _groups(cands.phone_code[pos])
            order, first = pos[order], pos[first]
        else:
            key, order, first, starts, cnt = groups
        phone_col = cands.phone
        folded = np.isin(key, _codes_of(person_phones, cands.phone_table))
    else:
        phones = _normalised(cands.phone)
        has = phones != ""
        pos = np.flatnonzero(has)
        key, order, first, starts, cnt = _groups(phones[pos])
        order, first = pos[order], pos[first]
        phone_col = phones.astype(object)
        phone_col[~has] = None
        folded = np.isin(key, np.array(person_phones, dtype=str)) if person_phones else np.zeros(len(first), bool)
    # from here ``order`` lists the candidates with a phone grouped by phone, ``first`` each group's first
    texts = cands.texts
    by_phone = {r.phone: r for r in persons if r.phone}
    fold = np.flatnonzero(folded)
    for g, number in zip(fold.tolist(), phone_col[first[fold]].tolist(), strict=True):
        r = by_phone[number]
        for c in order[starts[g] : starts[g] + cnt[g]].tolist():
            reason, rkey = texts[int(cands.reason[c])], cands.key(c)
            if reason not in r.reasons:
                r.reasons.append(reason)
            if rkey not in r.keys:
                r.keys.append(rkey)
            if r.household_id is None:
                shelter = int(cands.shelter_id[c])
                r.household_id, r.shelter_id = int(cands.household_id[c]), shelter if shelter >= 0 else None
    keep = ~folded
    is_rep = ~has  # a person: each group's first candidate, and each candidate without a phone
    is_rep[first[keep]] = True
    reps = np.flatnonzero(is_rep)
    multi_mask = keep & (cnt > 1)
    multi = np.flatnonzero(multi_mask)
    merged: Mapping[int, tuple[list[str], list[str]]] = {}
    if len(multi):
        rows = np.searchsorted(reps, first[multi]).tolist()
        members = order[np.repeat(multi_mask, cnt)]  # ``order`` is grouped by phone
        merged = MergedRecords(
            rows, cands.kind[members], cands.record_id[members], cands.reason[members], cnt[multi], texts
        )
    out = Residents(
        cands.kind[reps],
        cands.record_id[reps],
        cands.name[reps],
        phone_col[reps],
        cands.unit_code[reps],
        cands.household_id[reps],
        cands.shelter_id[reps],
        cands.reason[reps],
        texts,
        merged,
    )
    return persons, out


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def quiet_until(pref: Pref | None, level: Level, now_ms: int) -> int | None:
    """The end of the person's quiet hours if ``now_ms`` lies inside them and the level allows waiting."""
    if pref is None or not pref.quiet_start or not pref.quiet_end or level >= Level.ORANGE:
        return None
    now = dt.datetime.fromtimestamp(now_ms / 1000, CST)
    start, end, cur = _minutes(pref.quiet_start), _minutes(pref.quiet_end), now.hour * 60 + now.minute
    inside = start <= cur < end if start <= end else (cur >= start or cur < end)
    if not inside:
        return None
    wait = (end - cur) % (24 * 60)
    base = now.replace(second=0, microsecond=0)
    return int((base + dt.timedelta(minutes=wait)).timestamp() * 1000)


def channels_for(recipient: Recipient, level: Level, pref: Pref | None) -> list[tuple[str, str]]:
    """``(channel, address)`` pairs for one recipient of a warning at ``level``."""
    out: list[tuple[str, str]] = []
    wanted = set(pref.channels) if pref and pref.channels else {"sms", "inbox"}
    phone = recipient.phone
    if phone and ("sms" in wanted or level >= Level.ORANGE):
        out.append(("sms", phone))
    if phone and level >= Level.RED and recipient.audience in ("resident", "responsible"):
        out.append(("voice", phone))
    if pref and pref.email and "email" in wanted:
        out.append(("email", pref.email))
    if "inbox" in wanted and recipient.audience in ("responsible", "official", "department"):
        out.append(("inbox", recipient.key))
    return out

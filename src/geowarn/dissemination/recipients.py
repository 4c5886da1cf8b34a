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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.warning.levels import Level

CST = dt.timezone(dt.timedelta(hours=8))

#: Audiences in the order of precedence when one person is reached in several capacities.
AUDIENCES = ("responsible", "official", "department", "resident", "group")
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


def merge(candidates: Iterable[Candidate]) -> list[Recipient]:
    """One recipient per person (same phone = same person), reasons de-duplicated in order."""
    by_identity: dict[str, Recipient] = {}
    rank = {a: i for i, a in enumerate(AUDIENCES)}
    for c in candidates:
        phone = normalise_phone(c.phone)
        ident = f"tel:{phone}" if phone else c.key
        r = by_identity.get(ident)
        if r is None:
            by_identity[ident] = Recipient(
                c.key, c.name, phone, c.unit_code, c.audience, [c.reason], [c.key], c.household_id, c.shelter_id
            )
            continue
        if c.reason not in r.reasons:
            r.reasons.append(c.reason)
        if c.key not in r.keys:
            r.keys.append(c.key)
        if rank.get(c.audience, 99) < rank.get(r.audience, 99):
            r.audience = c.audience
            if not c.key.startswith(("resident:", "household:")):
                r.key, r.name, r.unit_code = c.key, c.name, c.unit_code
        if r.household_id is None and c.household_id is not None:
            r.household_id, r.shelter_id = c.household_id, c.shelter_id
    return list(by_identity.values())


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
    merged: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.record_id)

    def keys(self) -> list[str]:
        """The person key of every row (``household:<id>`` / ``resident:<id>``)."""
        kinds = [f"{k}:" for k in RESIDENT_KINDS]
        return [kinds[k] + str(i) for k, i in zip(self.kind.tolist(), self.record_id.tolist(), strict=True)]

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


def merge_residents(persons: list[Recipient], cands: Residents) -> tuple[list[Recipient], Residents]:
    """:func:`merge` of ``persons`` (already merged) followed by the resident candidates ``cands``, columnar.

    A resident with the phone of a person is folded into that person (reasons and keys appended, the
    household filled in); residents sharing a phone are one row, the first record naming them. The
    result equals ``merge([*person candidates, *resident candidates])`` with the resident rows kept as
    columns (checked against :func:`merge` in tests/dissemination/test_fast_path.py).
    """
    phones = _normalised(cands.phone)
    has = phones != ""
    pos_ph = np.flatnonzero(has)
    ph = phones[pos_ph]
    uniq, first, inv, cnt = np.unique(ph, return_index=True, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")  # members of each phone, in candidate order
    starts = np.cumsum(cnt) - cnt
    texts = cands.texts
    by_phone = {r.phone: r for r in persons if r.phone}
    folded = np.zeros(len(uniq), dtype=bool)
    if by_phone and len(uniq):
        folded = np.isin(uniq, np.array(list(by_phone), dtype=str))
        for g in np.flatnonzero(folded).tolist():
            r = by_phone[str(uniq[g])]
            for c in pos_ph[order[starts[g] : starts[g] + cnt[g]]].tolist():
                reason, key = texts[int(cands.reason[c])], cands.key(c)
                if reason not in r.reasons:
                    r.reasons.append(reason)
                if key not in r.keys:
                    r.keys.append(key)
                if r.household_id is None:
                    shelter = int(cands.shelter_id[c])
                    r.household_id, r.shelter_id = int(cands.household_id[c]), shelter if shelter >= 0 else None
    keep = ~folded
    reps = np.sort(np.concatenate([pos_ph[first[keep]], np.flatnonzero(~has)]))
    merged: dict[int, tuple[list[str], list[str]]] = {}
    multi = np.flatnonzero(keep & (cnt > 1))
    if len(multi):  # plain lists from here: numpy scalars cost ~100 ns each, and these can be many
        rows = np.searchsorted(reps, pos_ph[first[multi]]).tolist()
        in_multi = np.repeat(keep & (cnt > 1), cnt)  # over ``order``, which is grouped by phone
        members = pos_ph[order[in_multi]]
        bounds = np.cumsum(cnt[multi]).tolist()
        m_reason = cands.reason[members].tolist()
        m_kind, m_id = cands.kind[members].tolist(), cands.record_id[members].tolist()
        start = 0
        for row, end in zip(rows, bounds, strict=True):
            reasons: list[str] = []
            for j in range(start, end):
                reason = texts[m_reason[j]]
                if reason not in reasons:
                    reasons.append(reason)
            merged[row] = (reasons, [f"{RESIDENT_KINDS[m_kind[j]]}:{m_id[j]}" for j in range(start, end)])
            start = end
    phone_col = phones.astype(object)
    phone_col[~has] = None
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

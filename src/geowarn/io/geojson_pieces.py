"""A GeoJSON FeatureCollection parsed a piece at a time, so that its first features are ready at once.

orjson parses the 140 MB of a national register in about a second, and nothing can be validated or
written until it is done. :func:`split_features` cuts the text between two features and parses
each piece on its own (orjson still does all the parsing). A cut is trusted only when the JSON
grammar (RFC 8259) proves it lies between two elements of the document's ``features`` array:

* the **head**, the text before the first cut closed by ``,"<mark>"]}``, must parse as an object
  whose ``features`` array ends with the mark: the cut lies between two elements of the array that
  the document's ``features`` member holds (the mark is random, so the file cannot contain it);
* each **middle piece**, wrapped in ``{"<mark>":[`` … ``]}`` (its depth in the document), must parse
  to an object of that one member: it starts where an element starts, and parsing is deterministic,
  so a piece that parses as whole elements ends between two elements (one that closed the array
  would have added members);
* the **tail**, opened by ``{"features":["<mark>",``, must parse as an object whose ``features``
  starts with the mark (a later duplicate ``features`` member would have replaced it, and the
  whole-file parse would then have kept only that one: :class:`PiecesDisagree`).

A candidate cut inside a string or a nested value fails its parse; the next one is tried, a few
times, and then the remainder is parsed as the tail. When the head cannot be proved, the caller
parses the file whole (which also reports the file's own syntax error).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import orjson

__all__ = ["Pieces", "PiecesDisagree", "split_features"]

#: The end of one feature object and the start of the next (JSON's four whitespace characters only:
#: the bytes between pieces are dropped, and ``\s`` would also take a vertical tab or a form feed).
_BETWEEN = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")
#: Candidate cuts tried before a piece is parsed with the rest of the file.
_TRIES = 4


class PiecesDisagree(Exception):
    """The pieces read so far do not describe the file as a whole parse would: read it whole."""


class Pieces:
    """The document's members (without ``features``) and its features, piece by piece.

    ``members`` is complete once the iterator is exhausted: members after the ``features`` array
    are only seen in the tail.
    """

    def __init__(self, data: bytes, members: dict[str, Any], first: list[Any], start: int, mark: str) -> None:
        self.members = members
        self.first = first
        #: Bytes per feature in the head (the document's own members included): sizes later pieces.
        self.bytes_per_feature = start / max(1, len(first))
        self.data = data
        self._start, self._mark = start, mark

    def estimated_total(self) -> int:
        return max(len(self.first), round(len(self.data) / self.bytes_per_feature))

    def rest(self, features_per_piece: int) -> Iterator[list[Any]]:
        """The features after the head, about ``features_per_piece`` at a time."""
        data, start = self.data, self._start
        step = max(1, int(self.bytes_per_feature * features_per_piece))
        while (cut := _middle(data, start, step, self._mark)) is not None:
            feats, start = cut
            yield feats
        yield self._tail(start)

    def _tail(self, start: int) -> list[Any]:
        mark = self._mark
        # A syntax error here is the file's own.
        doc = orjson.loads(b'{"features":["' + mark.encode() + b'",' + self.data[start:])
        feats = doc.get("features") if isinstance(doc, dict) else None
        if not (isinstance(feats, list) and feats and feats[0] == mark):
            raise PiecesDisagree("a later member replaced the features array")
        del doc["features"]
        self.members.update(doc)
        return feats[1:]


def split_features(data: bytes, first_bytes: int) -> Pieces | None:
    """The head of a FeatureCollection (about ``first_bytes`` of it), or None if no cut could be proved."""
    mark = f"geowarn-cut-{secrets.token_hex(16)}"
    closing = b',"' + mark.encode() + b'"]}'
    pos = first_bytes
    for _ in range(_TRIES):
        m = _BETWEEN.search(data, pos)
        if m is None:
            return None
        try:
            doc = orjson.loads(data[: m.start() + 1] + closing)
        except orjson.JSONDecodeError:  # the cut was inside a string or a nested value
            pos = m.end() - 1
            continue
        feats = doc.get("features") if isinstance(doc, dict) else None
        if not (isinstance(feats, list) and len(feats) > 1 and feats[-1] == mark):
            return None  # a cut of some other array
        del doc["features"]
        return Pieces(data, doc, feats[:-1], m.end() - 1, mark)
    return None


def _middle(data: bytes, start: int, step: int, mark: str) -> tuple[list[Any], int] | None:
    """The whole features from ``start`` to a proved cut about ``step`` bytes on, and where the next begins.

    The piece is parsed as the one member, named by the mark, of an object: at the depth it has in
    the document, so the nesting limit applies alike. A piece that closes the array and goes on
    with members of its own parses to an object with more than one member, and is refused.
    """
    opening = b'{"' + mark.encode() + b'":['
    pos = start + step
    for _ in range(_TRIES):
        m = _BETWEEN.search(data, pos)
        if m is None:
            return None
        pos = m.end() - 1
        try:
            doc = orjson.loads(opening + data[start : m.start() + 1] + b"]}")
        except orjson.JSONDecodeError:
            continue
        if len(doc) == 1:
            return doc[mark], pos
    return None

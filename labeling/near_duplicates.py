"""Near-duplicate contributions: a resized, re-encoded, mirrored or rotated copy of a stored
image, or a text that differs from a stored one only in case, spacing or punctuation; for a
pairwise project, a pair whose two sides are such copies, in either order.

Images get a 64-bit difference hash (dHash: the image in grey at 9 x 8, each bit says whether a
pixel is brighter than its right neighbour). Copies that were resized, re-compressed or lightly
edited land within a few bits of the original; different pictures land ~32 bits apart. A new
image is also hashed in its seven other orientations (mirrored, rotated, flipped): a stored
image's copy turned any of those ways lands near the orientation that turns it back. Texts get
the SHA-256 of their normalised form (case-folded, punctuation and symbols removed, whitespace
collapsed). A pair of images is ``p`` and both sides' hashes in sorted order; a pair of texts, the
hash of both normalised forms in sorted order.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

#: Bits apart at or under which an image is refused as a copy of a stored one.
SAME_IMAGE_BITS = 6
#: Bits apart at or under which (and above SAME_IMAGE_BITS) moderators are asked to look.
BORDERLINE_IMAGE_BITS = 12

_SPACE = re.compile(r"\s+")


#: The other orientations a copy may have been turned to: mirrored, flipped and rotated.
_TURNS = (
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)
#: Side of the thumbnail the other orientations are hashed from (turning it, not the original).
_TURN_SIDE = 256


#: Mean colours further apart than this (0-255, in any channel) are different pictures whatever
#: their dHashes: dHash reads brightness edges only, so two gradients or two flat images of
#: different colours had the same hash.
COLOUR_TOLERANCE = 24


def _dhash(grey: Image.Image) -> int:
    small = grey.resize((9, 8), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)  # exact for "L"'s 0-255
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def _deep(image: Image.Image) -> bool:
    return image.mode.startswith("I") or image.mode == "F"


def _grey(image: Image.Image) -> Image.Image:
    # 16- and 32-bit greyscale would be clipped at 255 by "L" (a light 16-bit photo hashes to all
    # zeros): their values are compared as they are.
    return image.convert("F" if _deep(image) else "L")


def _colour(image: Image.Image) -> str:
    """The image's mean colour as 6 hex digits; empty for 16- and 32-bit images (clipped to 8
    bits, a light one would read as white)."""
    if _deep(image):
        return ""
    small = image.convert("RGB")
    small.thumbnail((64, 64), Image.Resampling.BOX)
    mean = np.asarray(small, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return "".join(f"{min(255, round(float(v))):02x}" for v in mean)


def image_hash(data: bytes) -> str:
    """The dHash of an image, as ``i`` and 16 hex digits, then its mean colour (6 hex digits)."""
    with Image.open(io.BytesIO(data)) as image:
        return f"i{_dhash(_grey(image)):016x}{_colour(image)}"


def image_hashes_turned(data: bytes) -> list[str]:
    """The dHashes of an image's seven other orientations (mirrored, flipped, rotated), for
    finding a stored image it is a turned copy of (with its mean colour, which turning keeps)."""
    return image_hashes(data)[1]


def image_hashes(data: bytes) -> tuple[str, list[str]]:
    """``image_hash`` and ``image_hashes_turned`` of one image, decoded once (an upload needs
    both)."""
    with Image.open(io.BytesIO(data)) as image:
        grey, colour = _grey(image), _colour(image)
    own = f"i{_dhash(grey):016x}{colour}"
    grey.thumbnail((_TURN_SIDE, _TURN_SIDE), Image.Resampling.LANCZOS)
    return own, [f"i{_dhash(grey.transpose(turn)):016x}{colour}" for turn in _TURNS]


def image_pair_hash(first: str, second: str) -> str:
    """A pair of images' near hash: ``p`` and both sides' hashes (dHash, then mean colour, 22 hex
    digits: a 16- or 32-bit side's colour is ``------``), in sorted order (a pair and its swap
    are one comparison)."""
    low, high = sorted(side[1:].ljust(22, "-") for side in (first, second))
    return f"p{low}{high}"


class _NormalisingTable(dict[int, str | None]):
    """``str.translate`` table, filled as characters are first seen: punctuation, symbols and
    separators become a space, what isn't printable goes. Once seen, a character costs a C dict
    lookup (bulk imports hash 100,000 texts in well under a second)."""

    def __missing__(self, code: int) -> str | None:
        c = chr(code)
        value = (" " if unicodedata.category(c)[0] in "PSZ" else c) if c.isprintable() else None
        self[code] = value
        return value


_NORMALISE = _NormalisingTable()


def _normal_form(text: str) -> str:
    """Case-folded, punctuation and symbols gone, whitespace collapsed. A text that is only
    punctuation, symbols or emoji normalises to nothing: its form is the text itself, marked so
    it can't equal a normalised one, or every such text would be a near copy of every other."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    normalised = _SPACE.sub(" ", folded.translate(_NORMALISE)).strip()
    return normalised or "\x00" + text


def text_hash(text: str) -> str:
    """The SHA-256 of a text's normalised form (``t`` and 64 hex digits)."""
    return "t" + hashlib.sha256(_normal_form(text).encode("utf-8")).hexdigest()


def text_pair_hash(first: str, second: str) -> str:
    """A pair of texts' near hash: the SHA-256 of both normalised forms in sorted order, marked
    so it can't equal one text's (no normalised form holds a control character)."""
    forms = sorted((_normal_form(first), _normal_form(second)))
    return "t" + hashlib.sha256(("\x01" + "\x00".join(forms)).encode("utf-8")).hexdigest()


def _parsed(hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The dHashes (uint64) and mean colours (n x 3, NaN where unknown) of image hashes, each
    ``i``-less: 16 hex digits, then 6 of colour or none (stored before colours were kept)."""
    values = np.array([int(h[:16], 16) for h in hashes], dtype=np.uint64)
    colours = np.array(
        [
            [int(h[16 + 2 * c : 18 + 2 * c], 16) for c in range(3)]
            if len(h) >= 22 and h[16] != "-"
            else [np.nan] * 3
            for h in hashes
        ],
        dtype=np.float64,
    ).reshape(-1, 3)
    return values, colours


def _bits_apart(values: np.ndarray, target: str) -> np.ndarray:
    diff = np.bitwise_xor(values, np.uint64(int(target[:16], 16)))
    counted: np.ndarray = np.unpackbits(diff.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
    return counted


def _colour_far(colours: np.ndarray, target: str) -> np.ndarray:
    """Whether each stored mean colour is further than ``COLOUR_TOLERANCE`` from the target's
    (unknown on either side: not far)."""
    _, mine = _parsed([target])
    with np.errstate(invalid="ignore"):
        far: np.ndarray = (np.abs(colours - mine[0]) > COLOUR_TOLERANCE).any(axis=1)
    return far


def _apart(
    values: np.ndarray, colours: np.ndarray, target: str, turned: Sequence[str]
) -> np.ndarray:
    """Bits apart of each stored image from the target: its dHash distance, at least
    ``SAME_IMAGE_BITS + 1`` (similar, never a copy: a recoloured copy) when the mean colours
    differ, and 64 (unrelated) when they differ and either hash says next to nothing (a flat or
    evenly graded picture: every one of them hashes alike); a turned orientation counts only when
    the colours don't differ (a gradient and its mirror image of another colour are different
    pictures)."""
    far = _colour_far(colours, target)
    bits = _bits_apart(values, target)
    weak = _weak(values) | _weak(np.array([int(target[:16], 16)], dtype=np.uint64))[0]
    bits = np.where(far, np.maximum(bits, SAME_IMAGE_BITS + 1), bits)
    bits = np.where(far & weak, 64, bits)
    for other in turned:
        bits = np.where(far, bits, np.minimum(bits, _bits_apart(values, other)))
    return bits


#: A dHash with at most this many bits set, or unset, says next to nothing of its picture.
_WEAK_BITS = 8


def _weak(values: np.ndarray) -> np.ndarray:
    ones: np.ndarray = np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
    weak: np.ndarray = (ones <= _WEAK_BITS) | (ones >= 64 - _WEAK_BITS)
    return weak


def image_distances(
    target: str, stored: Iterable[tuple[int, str]], turned: Sequence[str] = ()
) -> list[tuple[int, int]]:
    """``(bits apart, item id)`` for each stored image hash, closest first (``_apart``; with
    ``turned``, the image's other orientations, the closest orientation)."""
    rows = [(item_id, h) for item_id, h in stored if h.startswith("i")]
    if not rows:
        return []
    values, colours = _parsed([h[1:] for _, h in rows])
    bits = _apart(values, colours, target[1:], [t[1:] for t in turned])
    order = np.argsort(bits, kind="stable")
    return [(int(bits[i]), rows[i][0]) for i in order]


def pair_distances(target: str, stored: Iterable[tuple[int, str]]) -> list[tuple[int, int]]:
    """``(bits apart, item id)`` for each stored pair of images, closest first: a pair is as far
    from another as its farther side, in the order of the two sides that matches best."""
    rows = [(item_id, h) for item_id, h in stored if h.startswith("p") and len(h) == 45]
    if not rows:
        return []
    firsts = _parsed([h[1:23] for _, h in rows])
    seconds = _parsed([h[23:45] for _, h in rows])
    one, two = target[1:23], target[23:45]
    straight = np.maximum(_apart(*firsts, one, ()), _apart(*seconds, two, ()))
    swapped = np.maximum(_apart(*firsts, two, ()), _apart(*seconds, one, ()))
    apart = np.minimum(straight, swapped)
    order = np.argsort(apart, kind="stable")
    return [(int(apart[i]), rows[i][0]) for i in order]

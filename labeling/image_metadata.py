"""Contributed images without their metadata: what the camera knew stays with the contributor.

A phone's JPEG carries GPS coordinates, the camera's make and serial number, the time, a
thumbnail, editing history (XMP), press captions (IPTC) and sometimes a second image after the end
marker. Items are shown to other contributors and sold to buyers, so none of it may be stored.

``strip_metadata`` keeps the pixels as they were encoded whenever it can: it rewrites the file's
container (JPEG segments, PNG chunks, WebP RIFF chunks) from a list of the blocks that describe
the picture, dropping everything else and any bytes after the image's end. Colour profiles are
dropped too (they name devices and dates); pixels are then read as sRGB, the web's default.
An image whose EXIF orientation says "rotated" is decoded, turned upright and encoded again
(losslessly for PNG and lossless WebP, at JPEG quality 95 otherwise), then rewritten the same way.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageOps, JpegImagePlugin

EXIF_ORIENTATION = 0x0112

# --- JPEG ---------------------------------------------------------------------------------------
_SOI, _EOI, _SOS, _APP0, _APP14 = 0xD8, 0xD9, 0xDA, 0xE0, 0xEE
# Markers without a length: TEM and the restart markers.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# APP1 (EXIF, XMP), APP2 (ICC profile, MPF), APP3-APP13 (APP13: Photoshop/IPTC), APP15, COM.
_JPEG_METADATA = {*range(0xE1, 0xEE), 0xEF, 0xFE}


class MalformedImage(ValueError):
    """The container could not be walked; the caller re-encodes the decoded image instead."""


def _jfif_without_thumbnail(segment: bytes) -> bytes | None:
    """An APP0 segment's payload, keeping a JFIF header without its thumbnail; None drops it
    (JFXX extension segments hold only thumbnails)."""
    if not segment.startswith(b"JFIF\x00") or len(segment) < 14:
        return None
    return segment[:12] + b"\x00\x00"  # version, units, densities; thumbnail 0 x 0


def _jpeg_strip(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise MalformedImage("no JPEG start-of-image marker")
    out = bytearray(b"\xff\xd8")
    pos, end = 2, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise MalformedImage(f"expected a JPEG marker at byte {pos}")
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out += b"\xff\xd9"
            return bytes(out)  # anything after the end marker is dropped
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > end:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > end:
            raise MalformedImage("a JPEG segment runs past the end of the file")
        payload = data[pos + 2 : pos + length]
        pos += length
        if marker in _JPEG_METADATA:
            continue
        if marker == _APP0:
            kept = _jfif_without_thumbnail(payload)
            if kept is None:
                continue
            payload = kept
        out += bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
        if marker == _SOS:
            # Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart.
            scan = pos
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= end:
                    raise MalformedImage("JPEG scan data has no end")
                following = data[scan + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    scan += 1 if following == 0xFF else 2
                    continue
                break
            out += data[pos:scan]
            pos = scan
    raise MalformedImage("no JPEG end-of-image marker")


# --- PNG ----------------------------------------------------------------------------------------
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that make up the still picture; text, EXIF, ICC, time and private chunks are dropped, and
# so are APNG's animation chunks (an animation is refused; those of a one-frame APNG are dropped,
# leaving the picture a browser shows as it is).
_PNG_KEEP = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"sBIT",
    b"bKGD",
    b"pHYs",
    b"hIST",
}


def _png_strip(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise MalformedImage("no PNG signature")
    out = bytearray(_PNG_SIGNATURE)
    pos, end = len(_PNG_SIGNATURE), len(data)
    while pos + 12 <= end:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk_end = pos + 12 + length
        if chunk_end > end:
            raise MalformedImage("a PNG chunk runs past the end of the file")
        if kind in _PNG_KEEP:
            out += data[pos:chunk_end]
        pos = chunk_end
        if kind == b"IEND":
            return bytes(out)  # anything after IEND is dropped
    raise MalformedImage("no PNG IEND chunk")


# --- WebP ---------------------------------------------------------------------------------------
_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}
_VP8X_ICC, _VP8X_EXIF, _VP8X_XMP = 0x20, 0x08, 0x04


def _webp_strip(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MalformedImage("no WebP RIFF header")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)  # bytes after the RIFF container are dropped
    chunks = bytearray()
    pos = 12
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        padded = size + (size & 1)
        if pos + 8 + size > end:
            raise MalformedImage("a WebP chunk runs past the end of the file")
        chunk = bytearray(data[pos : pos + 8 + padded])
        if kind == b"VP8X" and size >= 1:
            chunk[8] &= ~(_VP8X_ICC | _VP8X_EXIF | _VP8X_XMP) & 0xFF
        if kind in _WEBP_KEEP:
            chunks += chunk
        pos += 8 + padded
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + bytes(chunks)


_STRIPPERS = {"JPEG": _jpeg_strip, "PNG": _png_strip, "WEBP": _webp_strip}


def _reencode(image: Image.Image, fmt: str, *, lossless_webp: bool, jpeg_sampling: int) -> bytes:
    """``image`` encoded again with no metadata at all (its ``info`` would carry some along)."""
    transparency = image.info.get("transparency")
    image.info = {} if transparency is None else {"transparency": transparency}
    buffer = io.BytesIO()
    if fmt == "JPEG":
        options: dict[str, object] = {"quality": 95, "optimize": True}
        if jpeg_sampling >= 0:
            options["subsampling"] = jpeg_sampling
        image.save(buffer, "JPEG", **options)
    elif fmt == "PNG":
        image.save(buffer, "PNG", optimize=False)
    else:
        image.save(buffer, "WEBP", **({"lossless": True} if lossless_webp else {"quality": 95}))
    return buffer.getvalue()


def strip_metadata(data: bytes, fmt: str) -> bytes:
    """``data`` (a JPEG, PNG or WebP Pillow has verified) without metadata, upright.

    Raises ``OSError``/``ValueError`` if Pillow can't decode it (the caller refuses the upload).
    """
    with Image.open(io.BytesIO(data)) as image:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        still = getattr(image, "n_frames", 1) == 1
        if orientation not in (1, None) and still:
            # Turn it upright so the picture still looks right once the EXIF tag is gone.
            sampling = JpegImagePlugin.get_sampling(image) if fmt == "JPEG" else -1
            upright = ImageOps.exif_transpose(image)
            data = _reencode(
                upright,
                fmt,
                lossless_webp=fmt == "WEBP" and b"VP8L" in data[12:64],
                jpeg_sampling=sampling,
            )
    try:
        return _STRIPPERS[fmt](data)
    except MalformedImage:
        # Pillow decodes some files whose container is irregular (junk between segments): take
        # the decoded pixels instead of the original container.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            sampling = JpegImagePlugin.get_sampling(image) if fmt == "JPEG" else -1
            reencoded = _reencode(
                image, fmt, lossless_webp=b"VP8L" in data[12:64], jpeg_sampling=sampling
            )
        return _STRIPPERS[fmt](reencoded)

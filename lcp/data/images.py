"""Image I/O, the one module for it: which files are images, listing image folders, integrity
checks, decoding, deterministic JPEG and PNG writing.

Shared by the data tools (demo, synth, check, converters), the datasets' config checks, infer
and the report's thumbnails. An image folder is flat: the images lie directly in it (no
sub-folders) and other files (sidecar json) are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lcp.errors import LCPError

# What an image folder holds (converted, synthesised and demo sets; infer's inputs).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# What a converter accepts as a source image: whatever OpenCV decodes, written out as .jpg.
SOURCE_IMAGE_SUFFIXES = frozenset({*IMAGE_SUFFIXES, ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})
JPEG_QUALITY = 95
# The first and last bytes of a complete JPEG and PNG file.
JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def is_source_image(path: str | os.PathLike) -> bool:
    """Whether a converter takes the file at `path` for an image (by its suffix)."""
    return Path(path).suffix.lower() in SOURCE_IMAGE_SUFFIXES


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def check_image_folder(folder: str | os.PathLike | None, what: str = "image folder") -> Path:
    """`folder` as a Path; an LCPError naming its role `what` when it is not given, missing or
    not a folder."""
    if not folder:
        raise LCPError(f"{what}: no folder given")
    path = Path(folder)
    if not path.exists():
        raise LCPError(f"{folder}: {what} does not exist")
    if not path.is_dir():
        raise LCPError(f"{folder}: {what} is not a folder")
    return path


def list_images(folder: str | os.PathLike | None, what: str = "image folder", allow_empty: bool = False) -> list[Path]:
    """The image files directly inside `folder`, sorted by name.

    A missing folder, or one without images (unless allow_empty), is an LCPError naming the
    folder and its role `what`.
    """
    path = check_image_folder(folder, what)
    # a link to a missing file is listed too, so that its reader names it instead of a set one image short
    images = sorted(p for p in path.iterdir() if (p.is_file() or _dangling(p)) and is_image_name(p.name))
    if not images and not allow_empty:
        raise LCPError(f"{folder}: {what} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def image_file_problem(path: str | os.PathLike) -> str | None:
    """Why the file at `path` is not a complete, decodable image; None when it is."""
    problem = classify_image_file(path)
    return None if problem is None else problem[1]


def classify_image_file(path: str | os.PathLike) -> tuple[str, str] | None:
    """(code, description) of what is wrong with the image file at `path`; None when nothing is."""
    return inspect_image_file(path)[1]


def inspect_image_file(path: str | os.PathLike) -> tuple[np.ndarray | None, tuple[str, str] | None]:
    """(BGR uint8 image, None) for a sound image file, else (None, (code, description)).

    Codes: 'missing_image', 'unreadable_image', 'empty_image_file', 'truncated_image'.
    OpenCV decodes a truncated JPEG without error (it fills the missing part with grey), so
    completeness is checked on the bytes: a JPEG must end with its EOI marker and a PNG with
    its IEND chunk (trailing zero padding is tolerated).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, ("missing_image", "file not found")
    except OSError as exc:
        return None, ("unreadable_image", f"unreadable ({exc.strerror})")
    if not data:
        return None, ("empty_image_file", "empty file (0 bytes)")
    body = data.rstrip(b"\x00")
    if data.startswith(JPEG_START):
        if not jpeg_complete(data):
            return None, ("truncated_image", "truncated JPEG (no end-of-image marker)")
    elif data.startswith(PNG_START):
        if not body.endswith(PNG_END):
            return None, ("truncated_image", "truncated PNG (no IEND chunk)")
    else:
        return None, ("unreadable_image", "not a JPEG or PNG file")
    image = decode_image(data)
    if image is None:
        return None, ("unreadable_image", "cannot be decoded")
    return image, None


def jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG's end-of-image marker follows its scan. It usually ends the file, but
    phones append data after it (motion photos); an EXIF thumbnail's own marker, before the
    scan, does not count."""
    if data.rstrip(b"\x00").endswith(JPEG_END):
        return True
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the image data follows
            return data.find(JPEG_END, position) > position
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return False


def read_size(path: str | os.PathLike, expected: tuple[int, int] | None = None) -> tuple[int, int] | str:
    """(width, height) of the image file at `path` as mmdet reads it (EXIF quarter turns applied),
    from its header and its last bytes, without decoding it; else what is wrong with the file
    (empty, truncated like inspect_image_file says, or not an image). A PNG's EXIF chunk may
    follow its pixels, where the header does not show it: a PNG whose size is not `expected` is
    read whole for it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as file:
            head = file.read(8)
            if not head:
                return "empty file (0 bytes)"
            end = file.seek(0, os.SEEK_END)
            file.seek(max(0, end - 4096))
            tail = file.read().rstrip(b"\x00")
            if head.startswith(JPEG_START) and not tail.endswith(JPEG_END):
                file.seek(0)  # data after the image (a phone's motion photo), or truncated
                if not jpeg_complete(file.read()):
                    return "truncated JPEG (no end-of-image marker)"
            if head.startswith(PNG_START) and not tail.endswith(PNG_END):
                return "truncated PNG (no IEND chunk)"
            file.seek(0)
            with Image.open(file) as image:
                width, height = image.size
                # a JPEG's EXIF lies in its header; a PNG's eXIf chunk may follow its pixels, which
                # Pillow would then decode to find it: read it where it comes before them
                exif_first = head.startswith(JPEG_START) or "exif" in image.info
                orientation = image.getexif().get(0x0112, 1) if exif_first else 1
            if not exif_first and expected and expected != (width, height) and expected == (height, width):
                file.seek(0)
                orientation = exif_orientation(file.read())
    except (UnidentifiedImageError, SyntaxError, ValueError):  # UnidentifiedImageError is an OSError
        return "not an image Pillow can read"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return (height, width) if orientation in QUARTER_TURNS else (width, height)


def decode_image(data: bytes, flags: int | None = None) -> np.ndarray | None:
    """Decode encoded image bytes to a BGR uint8 array (or as `flags` says); None on failure."""
    import cv2

    flags = cv2.IMREAD_COLOR if flags is None else flags
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)


# EXIF orientations (tag 0x0112) that turn the image a quarter: OpenCV, and so mmdet, decode such
# a file with width and height swapped against its stored pixels.
QUARTER_TURNS = frozenset({5, 6, 7, 8})


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation of encoded image bytes (1, as stored, when it has none). OpenCV applies
    it when decoding (JPEG, PNG, TIFF, WebP), as photo viewers do: 3 turns the image half, 5-8 a
    quarter."""
    import io

    from PIL import Image, UnidentifiedImageError

    if data.startswith(PNG_START) and b"eXIf" not in data:  # Pillow decodes a whole PNG to look
        return 1
    try:
        with Image.open(io.BytesIO(data)) as image:
            value = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A BGR uint8 image; an LCPError naming the file if it is missing, truncated or undecodable."""
    image, problem = inspect_image_file(path)
    if problem is not None:
        raise LCPError(f"{path}: {problem[1]}")
    return image


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of a decodable image."""
    height, width = read_image(path).shape[:2]
    return width, height


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY, subsample_chroma: bool = False) -> bytes:
    """JPEG bytes of a BGR uint8 image; the same pixels always give the same bytes.

    Colour is kept at full resolution (4:4:4) unless `subsample_chroma`: with the usual 4:2:0
    subsampling a per-channel degradation (underwater colour cast) could not be measured back
    near edges. The converters' transcoded sources and the report's thumbnails are 4:2:0.
    """
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if not subsample_chroma:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buffer = cv2.imencode(".jpg", image, params)
    if not ok:
        raise RuntimeError("OpenCV could not encode the image as JPEG")
    return buffer.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes (lossless; uint8 or uint16, one or three channels)."""
    import cv2

    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("OpenCV could not encode the image as PNG")
    return buffer.tobytes()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] rounded to uint8 (values outside are clipped)."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """A uint8 image as float32 in [0, 1]."""
    return image.astype(np.float32) / 255.0

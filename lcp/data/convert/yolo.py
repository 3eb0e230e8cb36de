"""YOLO: one .txt per image, a line `class cx cy w h` per box (class id, the rest in 0..1).

Layout: SRC/images/... with SRC/labels/... mirroring it (images/a/b.jpg -> labels/a/b.txt),
the .txt files beside the images when SRC has no images/ and labels/ folders, or --labels DIR
mirroring SRC (images in Fog/, labels in Fog_YOLO_darknet/).

Rules:
  * class names, by id: --names FILE, else classes.txt or data.yaml in SRC (then in the
    labels folder). A names file is one name a line (line i is id i) or a data .yaml with
    `names:` as Ultralytics writes it, a list or an id: name mapping, whose ids may have
    gaps (sparse ids 1, 2, 6). Without names the conversion is refused: --classes never
    stands in for them, since a set's ids follow its own names, not the scene's order.
  * --classes picks classes by name and fixes their category order (as VOC's); boxes of
    other names are dropped and counted. Default: all names, in id order.
  * a line that is not 5 numbers, a class id without a name, or a coordinate above 1
    (pixel coordinates, not YOLO's normalised ones): error naming file:line.
  * boxes reaching outside the image are clipped, boxes left without area dropped, both
    reported.
  * two images of one stem in one folder (a.jpg, a.png) are an error: one label file
    cannot say which image its boxes belong to.
  * an image without a label file has no objects (YOLO's convention) and is kept unless
    --drop-empty (the evaluation scores it, mmdet's training skips it: filter_empty_gt); a label
    file without an image is an error.
  * split: the first folder below images/ when its name starts with train (-> train), or
    val or test (-> test), as in Ultralytics' train2017/val2017; without such folders a
    seeded --test-fraction draw (default 0.2).
    --test-fraction or --test-list re-split a set that has split folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lcp.data.convert.image_set import begin, finish
from lcp.data.convert.output import Output
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Box, Sample, keep_classes
from lcp.data.convert.sources import walk_files
from lcp.data.convert.splits import DEFAULT_SPLIT, Split
from lcp.data.images import is_source_image
from lcp.errors import LCPError

DEFAULT_TEST_FRACTION = 0.2
# Normalised coordinates are at most 1; the slack absorbs label writers' float rounding. A
# larger value means pixel coordinates, whose boxes would all land outside the image.
MAX_NORMALISED = 1.0 + 1e-6
SPLIT_OF_FOLDER_PREFIX = {"train": "train", "val": "test", "test": "test"}
NAMES_FILES = ("classes.txt", "data.yaml")


def split_of_folder(name: str) -> str:
    """The split of a first folder below images/ (train, train2017, val, valid, test...), or ''."""
    return next((split for prefix, split in SPLIT_OF_FOLDER_PREFIX.items() if name.lower().startswith(prefix)), "")


def read_names(path: Path) -> dict[int, str]:
    """Class names by id from a names file (one a line) or a YOLO data .yaml (`names:`)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Windows editors start files with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise LCPError(f"{path}: cannot read the names file ({exc})") from None
    if path.suffix.lower() not in {".yaml", ".yml"}:
        lines = text.strip("\n").splitlines()
        if any(not line.strip() for line in lines):
            # a blank line inside the list would shift every later id by one
            raise LCPError(
                f"{path}: line {[line.strip() for line in lines].index('') + 1} is empty; "
                "line i names class id i, so every line must hold a name"
            )
        names = {i: line.strip() for i, line in enumerate(lines)}
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            from lcp.io import yaml_error_text

            raise LCPError(yaml_error_text(path, exc)) from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, list):
            names = dict(enumerate(names))
        if not isinstance(names, dict) or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in names
        ):
            raise LCPError(f"{path}: `names:` must be a list of names or a mapping of class ids (0, 1, ...) to names")
        for class_id, name in names.items():
            # a number names a class as its text does; YAML reads yes/no/on/off as booleans, ~ as null
            if not isinstance(name, str | int | float) or isinstance(name, bool):
                raise LCPError(
                    f"{path}: `names:` gives class id {class_id} the name {name!r}, not a name; "
                    "write each name as text (in quotes if YAML reads it otherwise)"
                )
        names = {k: str(v).strip() for k, v in sorted(names.items())}
    if not names:
        raise LCPError(f"{path}: no class names")
    twice = sorted({name for name in names.values() if list(names.values()).count(name) > 1})
    if twice or not all(names.values()):
        what = f"{twice[0]!r} names two ids" if twice else "an empty name"
        raise LCPError(f"{path}: {what}; each class id needs a name of its own")
    return names


def describe(names: dict[int, str]) -> str:
    return ", ".join(f"{i} {name}" for i, name in names.items())


def parse_label_file(path: Path, names: dict[int, str]) -> list[Box]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LCPError(f"{path}: cannot read the label file ({exc})") from None
    boxes = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != 5:
            raise LCPError(f"{where}: expected 'class cx cy w h' (5 numbers), got {len(fields)} fields")
        try:
            index_value, cx, cy, w, h = (float(field) for field in fields)
        except ValueError:
            raise LCPError(f"{where}: not numbers: {line.strip()!r}") from None
        if not index_value.is_integer() or int(index_value) not in names:
            raise LCPError(f"{where}: class id {fields[0]} has no name (the names: {describe(names)})")
        if max(cx, cy, w, h) > MAX_NORMALISED:
            raise LCPError(
                f"{where}: cx cy w h {' '.join(fields[1:])} are not normalised to 0..1; YOLO labels give "
                "them as fractions of the image width and height (pixel coordinates? divide by the size)"
            )
        label = names[int(index_value)]
        corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        boxes.append(Box(label, *corners, origin=f"{where} ({label})", relative=True))
    return boxes


def layout(src: Path, labels: Path | None) -> tuple[Path, Path]:
    """(images root, labels root) of the three layouts."""
    if labels is not None:
        if not labels.is_dir():
            raise LCPError(f"{labels}: not a folder (--labels)")
        return src, labels
    if (src / "images").is_dir() and (src / "labels").is_dir():
        return src / "images", src / "labels"
    return src, src


def names_file(src: Path, labels: Path, names: Path | None) -> Path:
    # Names are only ever the set's own: --classes in the scene's order taken as the id map
    # would silently give every box of one class another class's name.
    if names is not None:
        return names
    for folder in dict.fromkeys([src, labels]):
        for candidate in NAMES_FILES:
            if (folder / candidate).is_file():
                return folder / candidate
    where = " or ".join(str(folder) for folder in dict.fromkeys([src, labels]))
    raise LCPError(
        f"{where}: no classes.txt or data.yaml names the class ids; give --names FILE "
        "(one name a line, line i for id i) — --classes only picks and orders classes by name"
    )


def _label_files(labels_root: Path) -> dict[Path, Path]:
    """The label files below `labels_root` by their path without the extension, which is .txt
    in any case (a.TXT labels a.JPG)."""
    found: dict[Path, Path] = {}
    for path in walk_files(labels_root):
        if path.suffix.lower() == ".txt" and path.name not in NAMES_FILES:
            key = path.relative_to(labels_root).with_suffix("")
            if (other := found.setdefault(key, path)) != path:
                raise LCPError(f"{path}: same label as {other} but for the case of its extension; keep one")
    return found


def collect(
    images_root: Path, labels_root: Path, names: dict[int, str], names_path: Path, report: Report
) -> tuple[list[Sample], bool]:
    """Samples with their boxes, and whether the source has its own split folders."""
    separate = images_root != labels_root
    samples = []
    used_labels = {names_path.resolve()}
    image_of_label: dict[Path, Path] = {}
    label_files = _label_files(labels_root)
    for path in walk_files(images_root):
        if not is_source_image(path):
            if not (path.suffix.lower() == ".txt" and not separate) and path.name not in NAMES_FILES:
                report.warn("not an image file (by its extension), skipped", path)
            continue
        relative = path.relative_to(images_root)
        label = label_files.get(relative.with_suffix(""), labels_root / relative.with_suffix(".txt"))
        if (other := image_of_label.setdefault(label, path)) != path:
            raise LCPError(
                f"{path}: same stem as {other}; both would take the boxes of {label}, so stems must be unique"
            )
        sample = Sample(path, split_of_folder(relative.parts[0]) if len(relative.parts) > 1 else "")
        if label.is_file():
            sample.boxes = parse_label_file(label, names)
            used_labels.add(label.resolve())
        else:
            report.count("image without a label file (no objects)")
        samples.append(sample)
    for path in walk_files(labels_root):
        if path.suffix.lower() == ".txt" and path.resolve() not in used_labels and path.name not in NAMES_FILES:
            looked_for = f"{images_root}/{path.relative_to(labels_root).with_suffix('')}.<jpg|png|...>"
            raise LCPError(f"{path}: label file without an image (looked for {looked_for})")
    own_split = any(sample.split for sample in samples)
    return samples, own_split


def convert(
    src: Path,
    output: Output,
    *,
    labels: Path | None = None,
    names: Path | None = None,
    classes: Sequence[str] | None = None,
    split: Split = DEFAULT_SPLIT,
    drop_empty: bool = False,
) -> Report:
    """Write the YOLO set at `src` as the image set `output`; `classes` (default: all names, in
    id order) picked by name, in category order."""
    report = begin("yolo", output, [src, labels, names, split.test_list], source_folder=src)
    images_root, labels_root = layout(src, labels)
    names_path = names_file(src, labels_root, names)
    names_by_id = read_names(names_path)
    classes = classes or list(names_by_id.values())
    unknown = [c for c in classes if c not in names_by_id.values()]
    if unknown:
        raise LCPError(f"--classes: {', '.join(unknown)} not among the names of {names_path} ({describe(names_by_id)})")
    samples, own_split = collect(images_root, labels_root, names_by_id, names_path, report)
    if own_split and not split.resplit:
        for sample in samples:
            if not sample.split:
                report.warn("image outside the train/val/test folders, skipped", sample.image)
        samples = [sample for sample in samples if sample.split]
    keep_classes(samples, classes, report, "box of class", labels_root)
    return finish(
        samples,
        output,
        report,
        split=split,
        default_test_fraction=DEFAULT_TEST_FRACTION,
        classes=classes,
        description=f"YOLO {src}",
        own_split=own_split,
        drop_empty=drop_empty,
    )

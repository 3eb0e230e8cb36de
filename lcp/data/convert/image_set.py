"""Writing one image set from a converter's samples, and the two ends every converter shares:
`begin` refuses a taken output before any work, `finish` splits and writes.

`write_image_set`
  1. names the images flat and uniquely (output.flat_names),
  2. writes every image as .jpg into a staging folder, in parallel (transcode),
  3. builds one COCO dict per split, boxes clipped to the decoded sizes (annotations), after
     comparing those with the sizes the source records,
  4. renames the staging folder and the json files into place (output.publish), so a
     reader never sees a half-written image set.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from lcp.data.convert.annotations import build_annotations, check_labels, check_recorded_sizes
from lcp.data.convert.output import Output, check_output_free, flat_names, publish
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Sample
from lcp.data.convert.splits import Split, assign_splits
from lcp.data.convert.transcode import transcode_images
from lcp.errors import LCPError
from lcp.io import release, temp_folder, write_json


def write_image_set(
    samples: Sequence[Sample],
    output: Output,
    *,
    classes: Sequence[str],
    report: Report,
    drop_empty: bool = False,
    description: str = "",
) -> dict[str, dict]:
    """Write OUT/NAME/*.jpg and OUT/annotations/NAME_<split>.json, add their summary to the
    report; return the COCO dicts by split."""
    out, name = output.out, output.name
    # an image file linked from elsewhere is read where its link points: an output holding that
    # file (an earlier conversion, replaced with --overwrite) would delete it
    linked = [sample.image for sample in samples if sample.image.is_symlink()]
    sources = dict.fromkeys([*(sample.image.parent for sample in samples), *linked])  # in order, each once
    check_output_free(out, [name], output.overwrite, sources)
    if not samples:
        raise LCPError(f"{out / name}: no images to write (nothing usable was found in the source)")
    check_labels(samples, classes)

    samples = sorted(samples, key=lambda s: s.image.as_posix())
    file_names = flat_names([s.image for s in samples])
    out_was_there = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = temp_folder(out / name)
    try:
        images = staging / name
        images.mkdir()
        sizes = transcode_images(
            [s.image for s in samples], [images / f for f in file_names], output.workers, desc=f"convert {name}"
        )
        check_recorded_sizes(samples, sizes, report)
        info = {"description": description or name, "converted_by": f"lcp data convert {report.command}"}
        annotations = build_annotations(
            samples,
            file_names,
            sizes,
            folder=out / name,
            classes=classes,
            info=info,
            report=report,
            drop_empty=drop_empty,
        )
        for file_name in annotations.dropped:
            (images / file_name).unlink()
        for split, coco in annotations.cocos.items():
            write_json(staging / "annotations" / f"{name}_{split}.json", coco)
        publish(staging, out, name, list(annotations.cocos), output.overwrite)
    except OSError as exc:  # named as the file it was going to be (a full disk, no permission)
        if exc.filename is None or not Path(exc.filename).is_relative_to(staging):
            raise
        raise OSError(exc.errno, exc.strerror, str(out / Path(exc.filename).relative_to(staging))) from exc
    finally:
        release(staging)
        shutil.rmtree(staging, ignore_errors=True)
        if not out_was_there and not any(out.iterdir()):
            out.rmdir()
    report.add_section(annotations.summary(out, name, classes))
    return annotations.cocos


def begin(command: str, output: Output, sources: Iterable[Path | None], source_folder: Path | None = None) -> Report:
    """Refuse a `source_folder` that is not a folder, or an output that is taken or would
    touch one of `sources` (the paths the conversion reads), before any work."""
    if source_folder is not None and not source_folder.is_dir():
        raise LCPError(f"{source_folder}: not a folder")
    check_output_free(output.out, [output.name], output.overwrite, sources)
    return Report(command)


def finish(
    samples: Sequence[Sample],
    output: Output,
    report: Report,
    *,
    split: Split,
    default_test_fraction: float,
    classes: Sequence[str],
    description: str,
    own_split: bool = False,
    drop_empty: bool = False,
) -> Report:
    """Split (unless the samples carry the source's own split and no re-split was asked for),
    then write the image set."""
    if not own_split or split.resplit:
        assign_splits(samples, split, default_test_fraction, report)
    write_image_set(samples, output, classes=classes, report=report, drop_empty=drop_empty, description=description)
    return report

"""Library calls leave their caller's stdout alone: pycocotools and mmcv print there (annotation
loading, COCOeval's steps, evaluation progress), and a program calling lcp.apis may be writing
its own output there."""

from __future__ import annotations

import contextlib
import functools
import io
import sys
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def stdout_to_stderr(function: Callable[P, R]) -> Callable[P, R]:
    """`function` with whatever it prints on stdout sent to stderr instead."""

    @functools.wraps(function)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with contextlib.redirect_stdout(sys.stderr):
            return function(*args, **kwargs)

    return quiet


@contextlib.contextmanager
def annotation_loading_unprinted() -> Iterator[None]:
    """pycocotools' COCO() prints four lines on stdout for every annotation file it loads
    ("loading annotations into memory...", "index created!"); building a data set drops them."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield

"""`lcp data check`: the gate before training; reads an image set and modifies nothing.

Two modes. A synthesised set (--degradation fog|rain|underwater, or the sidecar's, or the
file names' marker) is checked against its clean set (--clean), pair by pair, as below. A
real low-quality set (--degradation none, or neither a sidecar nor a marker in the names and
no --clean) has nothing to pair with: its images (all of --lowq, decodable) and annotations
(looked up in --lowq only) are checked alone.

Pairing rule: a low-quality image `<clean stem>_<marker>_<key>_<value>....jpg` (marker
foggy / rain / underwater, cut at its last occurrence) pairs with the one clean image
`<clean stem>.<jpg|jpeg|png>`. Checked per pair: both files complete and decodable, same
size, the same scene (band-pass correlation of the grey images), the sidecar (if
OUT_DIR/synthesis.json exists) names this clean image as the source, and the degradation
is present and, against the sidecar's expected values, in range. Per annotation file:
every image exists and decodes, its recorded size is right, boxes have positive area and lie
inside the image, category ids exist, names match --classes, ids are unique. Over all
annotation files: every category has at least one box; in --degradation none mode, every
image of --lowq is listed in some annotation file (a warning).

Objects: the sidecar records, per synthesised image, the depth source (disparity, depth map
or the ground-plane fallback) and the visibility of each annotated box (the share of the
clean image the degradation leaves over it; fog: the mean transmission). A box below
--erased-below is erased (a warning per image); more than --max-erased-share of a variant's
boxes erased is an error. Images synthesised with the fallback depth are named (a warning
per set), and so is each of them the fallback mostly whitened (more than half its pixels erased).

Output: a short summary on stdout, the full report as json with --report (atomically),
exit status 2 with the reasons when any error is found (the status of every lcp command that
refuses its input, so the workflow does not retry the check), 0 otherwise.
"""

# One module per kind of check: pairs.py (the synthesised pairs), visibility.py (depth and box
# visibility from the sidecar), annotations.py (the COCO files); gate.py's check_set runs them
# and builds the report, summary.py prints it, findings.py collects what they find.
from lcp.data.check.gate import NONE, check_set
from lcp.data.check.summary import format_summary
from lcp.data.check.visibility import MAX_ERASED_SHARE

__all__ = ["MAX_ERASED_SHARE", "NONE", "check_set", "format_summary"]

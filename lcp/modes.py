"""The names of LCPDetector's train modes and of the mode plan's phases, spelled once.

Imports nothing, so that light modules (tracking, the workflow) can use the names and the
plan's checks too.
"""

CATCH_UP = "catch_up_learner"
CRUX = "crux_learner"
ALTER = "alter"  # a plan phase that alternates the train modes epoch by epoch, catch-up first

TRAIN_MODES = (CATCH_UP, CRUX)
PLAN_MODES = (*TRAIN_MODES, ALTER)


def check_plan(num_epoch, modes, where: str = "TrainModeHook") -> None:
    """Raise LCPError, naming `where` and the setting, unless the plan is phases of whole epochs."""
    from lcp.errors import LCPError

    if len(num_epoch) != len(modes) or not modes:
        raise LCPError(
            f"{where}: num_epoch {list(num_epoch)} and modes {list(modes)} must be non-empty and of the same length"
        )
    for i, (count, mode) in enumerate(zip(num_epoch, modes, strict=True)):
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise LCPError(f"{where}: num_epoch[{i}] = {count!r} is not a positive integer")
        if mode not in PLAN_MODES:
            raise LCPError(f"{where}: modes[{i}] = {mode!r} is not one of {list(PLAN_MODES)}")


def check_plan_length(num_epoch, modes, max_epochs: int, where: str) -> str | None:
    """Raise LCPError when the run's epochs leave out a train mode the plan has (a run cut to 6
    epochs of the published [6, 6, 12] trains the catch-up learner alone, its detector not at
    all) or outrun the plan (no mode for the epochs after it). A run that reaches both of its
    plan's modes may stop early: the sentence saying which planned epochs it leaves out is
    returned for a warning, None when the plan covers the run exactly. `where` names the plan's
    epochs, e.g. "config.py: mode_plan.num_epoch"."""
    from lcp.errors import LCPError

    planned = sum(num_epoch)
    plan = f"{where} = {list(num_epoch)} plans {planned} epochs but runner.max_epochs = {max_epochs}"
    if max_epochs > planned:
        raise LCPError(
            f"{plan}: epochs {planned + 1}-{max_epochs} would have no mode; give a plan of {max_epochs} epochs"
        )
    trained = {mode_for_epoch(epoch, num_epoch, modes) for epoch in range(1, max_epochs + 1)}
    for epoch in range(max_epochs + 1, planned + 1):
        if (train_mode := mode_for_epoch(epoch, num_epoch, modes)) not in trained:
            raise LCPError(
                f"{plan}: the run would end before its first {train_mode} epoch ({epoch}), so it never "
                f"trains the {train_mode}; give a plan of {max_epochs} epochs"
            )
    if max_epochs < planned:
        return f"{plan}: epochs {max_epochs + 1}-{planned} of the plan are not trained"
    return None


def mode_for_epoch(epoch: int, num_epoch, modes) -> str:
    """The train mode of 1-based `epoch` under the plan; a function of the epoch alone.

    The plan runs its phases in order, phase i lasting num_epoch[i] epochs; an 'alter'
    phase alternates catch_up_learner, crux_learner, ... starting with catch-up. The
    published plan [6, 6, 12] x [catch_up_learner, crux_learner, alter] gives epochs 1-6
    catch-up, 7-12 crux, 13 catch-up, 14 crux, ..., 24 crux.
    """
    from lcp.errors import LCPError

    check_plan(num_epoch, modes)
    if epoch < 1 or epoch > sum(num_epoch):
        raise LCPError(f"TrainModeHook: epoch {epoch} is outside the plan's epochs 1..{sum(num_epoch)}")
    first = 1
    for count, mode in zip(num_epoch, modes, strict=True):
        if epoch < first + count:
            return TRAIN_MODES[(epoch - first) % 2] if mode == ALTER else mode
        first += count
    raise AssertionError("unreachable: the epoch range was checked above")

"""The names of LCPDetector's train modes and of the mode plan's phases, spelled once.

Imports nothing, so that light modules (tracking, the workflow) can use the names too.
"""

CATCH_UP = "catch_up_learner"
CRUX = "crux_learner"
ALTER = "alter"  # a plan phase that alternates the train modes epoch by epoch, catch-up first

TRAIN_MODES = (CATCH_UP, CRUX)
PLAN_MODES = (*TRAIN_MODES, ALTER)

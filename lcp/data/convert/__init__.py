"""Converters from public data set formats into the scene layout the configs read.

A scene folder holds one flat folder of .jpg images per image set and COCO annotations
`annotations/<imageset>_<split>.json` (split: train or test). Each source format has its
own module; the shared pipeline (pairing, splitting, parallel transcoding, clipping,
COCO assembly, atomic publishing and the summary) lives in common.py.
"""

"""Converters from public data set formats into the scene layout the configs read.

A scene folder holds one flat folder of .jpg images per image set and COCO annotations
`annotations/<imageset>_<split>.json` (split: train or test). Each source format has its
own module whose `convert(...)` takes typed arguments (an `output.Output`, a `splits.Split`,
paths and class lists) and returns the `report.Report` it printed warnings into; the
`lcp data convert` command (lcp.commands.convert) parses the options and prints the report.

What the formats share, one job a module:
  samples     Box, Sample and the --classes rule
  report      warnings and the summary
  sources     finding a source's files and images
  splits      the test split: a list of names or a seeded draw
  transcode   every image decoded and written as .jpg, in parallel
  annotations the COCO dicts and their counts
  output      where an image set goes: names, refusals, atomic publishing
  image_set   writing one image set from samples (begin, finish, write_image_set)
"""

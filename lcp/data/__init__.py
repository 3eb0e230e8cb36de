"""Data tools: converters, degradation synthesis, synthesis checks and the demo scene."""

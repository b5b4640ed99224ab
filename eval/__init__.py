"""Evaluation: gold sets, metrics, the naive baseline, STARD, human ratings and the report."""

"""Training: time split, fitting, evaluation against baselines, plots and the promotion gate.

Import the pieces from their modules (``dealscore.training.pipeline``,
``dealscore.training.run``...); this package init stays import-light so the
CLI starts fast.
"""

"""Win and real-stage models, their baselines, calibration and the scoring bundle."""

from dealscore.models.baselines import LogisticBaseline, NaiveBayesBaseline, StageTableBaseline
from dealscore.models.bundle import ModelBundle
from dealscore.models.calibration import Calibrator
from dealscore.models.stage import StageModel
from dealscore.models.win import WinModel

__all__ = [
    "Calibrator",
    "LogisticBaseline",
    "ModelBundle",
    "NaiveBayesBaseline",
    "StageModel",
    "StageTableBaseline",
    "WinModel",
]

"""The report's experiments, one module each, found through the registry :data:`EXPERIMENTS` (run on every
task, in this order: later ones read earlier ones' summaries) and :data:`FIRING_PATTERNS` (once per report).

To add an experiment: a module here with an :class:`~.base.Experiment` subclass (its runs, summary, figures and
Markdown), and one entry in :data:`EXPERIMENTS`.
"""

from .base import Experiment
from .control_rate import ControlRateSweep
from .eigen_clamp import EigenvalueClamp
from .firing_patterns import FiringPatterns
from .imp_per_step import ImpPerStep
from .loss import LossComparison
from .readout import ReadoutComparison
from .time_averaged import TimeAveragedBaseline

#: the experiments run on each task, in the order they run and appear in the report
EXPERIMENTS: tuple[Experiment, ...] = (
    ControlRateSweep(), TimeAveragedBaseline(), EigenvalueClamp(), ImpPerStep(), ReadoutComparison(), LossComparison(),
)
FIRING_PATTERNS = FiringPatterns()

__all__ = ["EXPERIMENTS", "FIRING_PATTERNS", "Experiment"]

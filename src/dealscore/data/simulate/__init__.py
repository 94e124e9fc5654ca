"""A realistic synthetic CRM with known truth (``dealscore generate``).

``simulate(n_deals, seed)`` returns a :class:`SimulatedCRM`: a contract-format
:class:`~dealscore.data.history.DealHistory` as a CRM export at the data cut
would hold it, plus the truth behind it (latent qualities, real stages, latent
episodes). ``write_simulation`` writes both; ``oracle_win_probability`` gives the
exact win probability of any deal at any time. See docs/simulator.md.
"""

from dealscore.data.simulate.config import STAGES, SimConfig
from dealscore.data.simulate.core import TRUTH_DIR, SimulatedCRM, simulate, write_simulation
from dealscore.data.simulate.oracle import oracle_win_probability

__all__ = [
    "STAGES",
    "TRUTH_DIR",
    "SimConfig",
    "SimulatedCRM",
    "oracle_win_probability",
    "simulate",
    "write_simulation",
]

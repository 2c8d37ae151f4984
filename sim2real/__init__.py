"""Sim-to-real set-ups: simulator variants with a dynamics gap, domain randomisation, and privileges that a
curriculum removes.

The "real" side is an unmodified env plus a fixed offline dataset from it (``rl.datasets.load_dataset``);
the "sim" side is the same env with changed dynamics, set at run time on the loaded simulator (no XML file
is written, and a fresh env of the same id is untouched). :class:`RealSimReplayBuffer` keeps real data and
sim transitions in one SB3 replay buffer, sampled separately::

    from sim2real import SimVariant, DomainRandomization, parse_sim_spec
    sim = SimVariant(gym.make("HalfCheetah-v4"), "gravity=2.0")          # or "friction=0.3", "mass=0.5", ...
    sim = SimVariant(gym.make("HopperBulletEnv-v0"), {"friction": 0.5})
    randomised = DomainRandomization(gym.make("Hopper-v4"), ranges={"gravity": (0.5, 2.0)}, seed=0)

On the command line, ``python -m algos.h2o --env HalfCheetah-v4 --sim gravity=2.0 --dataset ...``; any registered
algorithm trains in a variant as the benchmark label ``sim_<algo>`` (:mod:`sim2real._training`), and
H2O's benchmark is ``python -m algos.h2o_benchmark`` (beside the algorithm it compares).

Privileged-action curricula (Mao et al., 2025): :class:`PrivilegedManipulation` grants sim-only privileges in a
panda-gym env (PyBullet) or a gymnasium-robotics Fetch env (MuJoCo): table penetration and a virtual force on the
object, scaled by a level in [0, 1]; :class:`PrivilegeCurriculum` (an SB3 callback) lowers that level while the
agent trains::

    env = PrivilegedManipulation(gym.make("PandaLiftWide-v0"), level=1.0)     # or "FetchLiftWide-v0"
    model.learn(1_000_000, callback=PrivilegeCurriculum("success", window=50, threshold=0.5, step=0.1))
"""

from sim2real._buffers import RealSimReplayBuffer
from sim2real._curriculum import CURRICULA, PrivilegeCurriculum
from sim2real._engines import DynamicsBackend, dynamics_backend
from sim2real._privileges import PRIVILEGES, PrivilegedManipulation, PrivilegeError
from sim2real._spec import (
    ALIASES,
    PARAMETERS,
    SimSpecError,
    describe_parameters,
    format_sim_spec,
    parse_sim_spec,
    validate_parameters,
)
from sim2real._training import configure_sim
from sim2real._wrappers import DomainRandomization, SimVariant, make_sim_env

__all__ = [
    "CURRICULA",
    "PRIVILEGES",
    "PrivilegeCurriculum",
    "PrivilegeError",
    "PrivilegedManipulation",
    "ALIASES",
    "PARAMETERS",
    "RealSimReplayBuffer",
    "DomainRandomization",
    "DynamicsBackend",
    "SimSpecError",
    "SimVariant",
    "configure_sim",
    "describe_parameters",
    "dynamics_backend",
    "format_sim_spec",
    "make_sim_env",
    "parse_sim_spec",
    "validate_parameters",
]

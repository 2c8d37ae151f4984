"""Training any registered algorithm in a simulator variant through the shared runner.

:func:`configure_sim` turns a :class:`rl.runner.RunConfig` into a run whose training envs are a
:class:`~sim2real.SimVariant` while evaluation stays in the real env (``python -m algos.h2o --sim ...`` uses
it). :func:`configure` is the same as a registered method (:data:`rl.registry.METHODS`): the benchmark label
``sim_<algo>`` trains ``<algo>`` in the variant named by its ``sim`` option, e.g.::

    python -m rl.benchmark --name sac_gravity --algos sim_sac sac --envs HalfCheetah-v4 -n 20000 \\
        -params sim_sac.sim:gravity=2.0
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from sim2real._spec import format_sim_spec, parse_sim_spec
from sim2real._wrappers import SimVariant

if TYPE_CHECKING:
    from rl.runner import RunConfig

SIM_OPTION = "sim"
"""The method option (among a run's hyperparameters) that names the variant: ``sim_sac.sim:gravity=2.0``."""


def configure_sim(config: RunConfig, spec: str | None) -> RunConfig:
    """Train in the simulator variant ``spec`` (``"gravity=2.0"``; None: the real env itself) and record it.

    Sets ``config.env_wrapper`` to the :class:`~sim2real.SimVariant` (the runner wraps the training envs only;
    evaluation stays in the real env) and adds ``{"sim": {"spec", "parameters"}}`` to the run record.
    """
    values = parse_sim_spec(spec) if spec is not None else {}
    if values:
        config.env_wrapper = partial(SimVariant, spec=values)
    config.extra_record = {
        **config.extra_record, "sim": {"spec": format_sim_spec(values) if values else None, "parameters": values},
    }
    return config


def configure(config: RunConfig, *, progress: bool = True) -> RunConfig:
    """The ``sim`` method: :func:`configure_sim` with the spec taken out of ``config.hyperparams["sim"]``."""
    hyperparams = dict(config.hyperparams)
    spec = hyperparams.pop(SIM_OPTION, None)
    if spec is None:
        raise ValueError(
            f"sim_{config.algo} trains {config.algo} in a simulator variant: name it with the option "
            f"{SIM_OPTION!r}, e.g. -params sim_{config.algo}.sim:gravity=2.0 (rl.benchmark)."
        )
    config.hyperparams = hyperparams
    return configure_sim(config, str(spec))

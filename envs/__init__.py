"""The project's own Gymnasium environments.

Importing this package registers them with Gymnasium (``rl.envs`` does it on demand). Later modules add
their tasks here with ``gymnasium.register``.

Registered:

- ``Coverage-{Constant,Bimodal,GP}-v0`` and ``Coverage-{Constant,Bimodal,GP}-History-v0``: SubPO's
  grid-world coverage (``envs.submodular.CoverageGridEnv``), Markovian and history-augmented observation.
"""

import gymnasium

for _name, _weights in (("Constant", "constant"), ("Bimodal", "bimodal"), ("GP", "gp")):
    for _suffix, _observation in (("", "markovian"), ("-History", "history")):
        _env_id = f"Coverage-{_name}{_suffix}-v0"
        if _env_id not in gymnasium.registry:
            gymnasium.register(
                id=_env_id,
                entry_point="envs.submodular:CoverageGridEnv",
                kwargs={"weights": _weights, "observation": _observation},
            )

"""The project's own Gymnasium environments.

Importing this package registers them with Gymnasium (``rl.envs`` does it on demand). Later modules add
their tasks here with ``gymnasium.register``.

Registered:

- ``Coverage-{Constant,Bimodal,GP}-v0`` and ``Coverage-{Constant,Bimodal,GP}-History-v0``: SubPO's
  grid-world coverage (``envs.submodular.CoverageGridEnv``), Markovian and history-augmented observation.
- ``AntCoverage-v0`` and ``AntCoverage-History-v0``: SubPO's MuJoCo Ant xy-coverage
  (``envs.ant_coverage.AntCoverageEnv``), Markovian and history-augmented observation.
- ``ExperimentDesign-v0`` and ``ExperimentDesign-History-v0``: SubPO's experiment design (GP information
  gain, ``envs.experiment_design.ExperimentDesignEnv``), Markovian and history-augmented observation.
- ``ItemCollection-v0`` and ``ItemCollection-History-v0``: SubPO's item collection with per-type caps
  (``envs.item_collection.ItemCollectionEnv``), Markovian and history-augmented observation.
- ``HydroDispatch-Toy-v0`` and ``HydroDispatch-BoliviaLike-v0``: long-term hydrothermal dispatch, action =
  target end volumes, reward = minus the scaled stage cost (``envs.hydro.gym_env.HydroDispatchEnv``), on the
  3-bus toy case and the synthetic 28-bus / 11-hydro / 96-stage case.
- ``RedundantArm-v0``, ``HardMaze-v0``, ``Curling-v0`` and ``AntMaze-v0``: the sparse-reward quality-diversity
  tasks of TAXONS / SERENE / STAX (``envs.redundant_arm.RedundantArmEnv``, ``envs.hard_maze.HardMazeEnv``,
  ``envs.curling.CurlingEnv``, ``envs.ant_maze.AntMazeEnv``); each class carries its ``spec_qd``
  (``envs.qd_task.QDTaskSpec``).
- ``mo-halfcheetah-bullet-v0`` and ``mo-hopper-bullet-v0``: C-MORL's PyBullet multi-objective tasks, PyBullet's
  HalfCheetah with reward [x velocity, -sum(action^2)] and Hopper with [x velocity, 10 x jump height] (+ healthy
  and control terms), as mo-gymnasium's ``mo-halfcheetah-v5`` / ``mo-hopper-2obj-v5``
  (``envs.mo_bullet.MOHalfCheetahBullet``, ``envs.mo_bullet.MOHopperBullet``).
- ``HopperTargetSpeed-v4``, ``HalfCheetahTargetSpeed-v4`` and ``HopperBulletTargetSpeed-v0``: PARL's tasks, the
  base locomotion reward with forward progress replaced by a hidden target-speed term
  (``envs.target_speed.TargetSpeedReward``).
- ``PandaLiftWide-v0`` and ``PandaLiftPlate-v0``: lift an object that cannot be grasped where it lies (a box
  wider than the gripper, a flat plate), panda-gym's Panda, goal-conditioned (``envs.panda_lift``).
- ``FetchLiftWide-v0`` and ``FetchLiftPlate-v0``: the same two tasks on gymnasium-robotics' Fetch arm (MuJoCo),
  goal-conditioned (``envs.fetch_lift``).
"""

import gymnasium

from envs.lift_goal import EPISODE_STEPS

for _name, _weights in (("Constant", "constant"), ("Bimodal", "bimodal"), ("GP", "gp")):
    for _suffix, _observation in (("", "markovian"), ("-History", "history")):
        _env_id = f"Coverage-{_name}{_suffix}-v0"
        if _env_id not in gymnasium.registry:
            gymnasium.register(
                id=_env_id,
                entry_point="envs.submodular:CoverageGridEnv",
                kwargs={"weights": _weights, "observation": _observation},
            )

# SubPO's continuous task: MuJoCo Ant covering [-20, 20]^2 (envs.ant_coverage.AntCoverageEnv); the env
# truncates its own 400-step episodes, so no max_episode_steps here.
for _env_id, _observation in (("AntCoverage-v0", "markovian"), ("AntCoverage-History-v0", "history")):
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            id=_env_id, entry_point="envs.ant_coverage:AntCoverageEnv", kwargs={"observation": _observation}
        )

# SubPO's other grid tasks (envs.submodular.SubmodularGridEnv over their set functions).
for _task, _entry_point in (
    ("ExperimentDesign", "envs.experiment_design:ExperimentDesignEnv"),
    ("ItemCollection", "envs.item_collection:ItemCollectionEnv"),
):
    for _suffix, _observation in (("", "markovian"), ("-History", "history")):
        _env_id = f"{_task}{_suffix}-v0"
        if _env_id not in gymnasium.registry:
            gymnasium.register(id=_env_id, entry_point=_entry_point, kwargs={"observation": _observation})

# TS-DDR's hydrothermal dispatch (envs.hydro.gym_env.HydroDispatchEnv); the env terminates at its last stage.
for _env_id, _case in (("HydroDispatch-Toy-v0", "toy"), ("HydroDispatch-BoliviaLike-v0", "bolivia-like")):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point="envs.hydro.gym_env:HydroDispatchEnv", kwargs={"case": _case})

# The quality-diversity tasks of TAXONS / SERENE / STAX; each env truncates its own episodes at spec_qd.max_steps.
for _env_id, _entry_point in (
    ("RedundantArm-v0", "envs.redundant_arm:RedundantArmEnv"),
    ("HardMaze-v0", "envs.hard_maze:HardMazeEnv"),
    ("Curling-v0", "envs.curling:CurlingEnv"),
    ("AntMaze-v0", "envs.ant_maze:AntMazeEnv"),
):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point)

# C-MORL's PyBullet multi-objective tasks (envs.mo_bullet); PyBullet's 1000-step episodes (C-MORL's runner caps
# its own episodes at 500).
for _env_id, _entry_point in (
    ("mo-halfcheetah-bullet-v0", "envs.mo_bullet:MOHalfCheetahBullet"),
    ("mo-hopper-bullet-v0", "envs.mo_bullet:MOHopperBullet"),
):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point, max_episode_steps=1000)

# PARL's hidden-reward tasks (envs.target_speed): the base task's reward with target-speed tracking.
for _env_id, (_base_id, _target) in {
    "HopperTargetSpeed-v4": ("Hopper-v4", 1.0),
    "HalfCheetahTargetSpeed-v4": ("HalfCheetah-v4", 3.0),
    "HopperBulletTargetSpeed-v0": ("HopperBulletEnv-v0", 1.0),
}.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point="envs.target_speed:make_target_speed_env", max_episode_steps=1000,
                           kwargs={"base_id": _base_id, "target_speed": _target})

# Privileged-action curricula's manipulation tasks (envs.panda_lift), 100 steps (envs.lift_goal).
for _env_id, _shape in (("PandaLiftWide-v0", "wide"), ("PandaLiftPlate-v0", "plate")):
    if _env_id not in gymnasium.registry:
        # nondeterministic: Bullet keeps contact caches across restoreState, so a reset after a different history
        # can step differently in the 6th decimal (runs from one seed repeat bit for bit; tests/test_panda_lift.py).
        gymnasium.register(id=_env_id, entry_point="envs.panda_lift:PandaLiftEnv", max_episode_steps=EPISODE_STEPS,
                           kwargs={"shape": _shape}, nondeterministic=True)

# The same tasks on gymnasium-robotics' Fetch (envs.fetch_lift), 100 steps. MuJoCo resets from a cleared state, so a
# seed gives the same episode whatever came before (deterministic, unlike the Bullet twins above).
for _env_id, _shape in (("FetchLiftWide-v0", "wide"), ("FetchLiftPlate-v0", "plate")):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point="envs.fetch_lift:FetchLiftEnv",
                           max_episode_steps=EPISODE_STEPS,
                           kwargs={"shape": _shape})

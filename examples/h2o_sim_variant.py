"""H2O: real data from a dataset plus online steps in an imperfect simulator (a ``sim2real.SimVariant``).

The "real" world is HalfCheetah-v4 as installed; its data are a D4RL-style dataset collected with ``rl.datasets`` by
the policy zoo's ``expert`` entry for HalfCheetah (a SAC policy committed under ``results/snapshot/teachers/``;
return 4258, short of D4RL's expert 12135). The simulator is the same env with doubled gravity,
``SimVariant(gym.make("HalfCheetah-v4"), "gravity=2.0")`` (changed in the loaded MuJoCo model at run time; the
installed XML is untouched). H2O trains SAC in the simulator on half real, half simulated batches; two
discriminators learn the dynamics ratio P_real/P_sim(s'|s, a) that weights the simulated Bellman errors and the
dynamics-aware penalty. The policy is then evaluated in the real env.

Run::

    python examples/h2o_sim_variant.py                        # 3,000 sim steps and updates: under a minute
    python examples/h2o_sim_variant.py --sim friction=0.3     # another gap: "mass=1.5", "action_noise=0.5", ...
    python examples/h2o_sim_variant.py --steps 100000 --transitions 200000 --net-arch 256 256 --batch-size 256

The HDF5 file needs h5py (``pip install -e ".[offline]"``).

Output (under ``--out``, default ``/tmp/frontier-rl-examples/h2o``): ``halfcheetah-expert-v2.hdf5`` (the real data),
``h2o_halfcheetah.zip`` (the model, discriminators included), ``dynamics_ratio.png`` and ``dynamics_ratio.npz`` (the
learned ratio on real and on simulated transitions); the script prints the mean ratio on each and the policy's
return in the real env and in the simulator.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from algos.h2o import H2O
from rl.datasets import OfflineDataset, generate_dataset, load_dataset
from rl.zoo import load_policy
from sim2real import SimVariant

ENV_ID = "HalfCheetah-v4"
TEACHERS = Path(__file__).resolve().parents[1] / "results" / "snapshot" / "teachers"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", default="gravity=2.0", help='the simulator\'s dynamics gap (default "gravity=2.0")')
    parser.add_argument("--transitions", type=int, default=5_000, help="real transitions in the dataset")
    parser.add_argument("--steps", type=int, default=3_000, help="simulator steps (one gradient step each)")
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64],
                        help="hidden layers of actor, critics and discriminators (authors: 256 256)")
    parser.add_argument("--batch-size", type=int, default=64, help="real + sim transitions per update (authors: 256)")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--zoo", type=Path, default=TEACHERS, help="policy-zoo root holding HalfCheetah-v4/expert/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/h2o"), help="output folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    return parser.parse_args(argv)


def real_dataset(path: Path, n_transitions: int, zoo: Path, seed: int, progress: bool) -> OfflineDataset:
    """Transitions of the zoo's expert entry for HalfCheetah in the real env, as a D4RL-layout file."""
    policy = load_policy(ENV_ID, "expert", root=zoo, seed=seed)
    generate_dataset("halfcheetah-expert-v2", policy, n_transitions=n_transitions, seed=seed, to_minari=False,
                     hdf5_path=path, work_dir=path.with_suffix(".work"), progress=progress)
    return load_dataset(path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = real_dataset(args.out / "halfcheetah-expert-v2.hdf5", args.transitions, args.zoo, args.seed, args.progress)

    # The simulator: the real env's id with the dynamics gap, applied inside SB3's Monitor by make_vec_env.
    sim = make_vec_env(ENV_ID, n_envs=1, seed=args.seed, wrapper_class=SimVariant, wrapper_kwargs=dict(spec=args.sim))
    model = H2O("MlpPolicy", sim, dataset=data, batch_size=args.batch_size, discriminator_batch_size=args.batch_size,
                discriminator_net_arch=args.net_arch, policy_kwargs=dict(net_arch=args.net_arch), seed=args.seed,
                device="cpu")
    model.learn(args.steps, progress_bar=args.progress)
    path = args.out / "h2o_halfcheetah.zip"
    model.save(path)
    ratio = model.write_run_artifacts(str(args.out))["dynamics_ratio"]
    print(f"learned dynamics ratio P_real/P_sim: {ratio['real_mean']:.3g} on real transitions, "
          f"{ratio['sim_mean']:.3g} on simulated ones ({args.sim})")

    # Deployed in the real env (what matters) and, for comparison, in the simulator it trained in.
    returns = {}
    for name, wrapper in (("real", None), ("sim", SimVariant)):
        env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed + 1_000, wrapper_class=wrapper,
                           wrapper_kwargs=dict(spec=args.sim) if wrapper else None)
        returns[name], _ = evaluate_policy(model, env, n_eval_episodes=args.eval_episodes, deterministic=True)
        env.close()
    print(f"H2O after {args.steps} sim steps: return {returns['real']:.0f} in the real env "
          f"(normalised {data.normalized_score(returns['real']):.1f}), {returns['sim']:.0f} in the simulator; "
          f"saved to {path}")
    sim.close()
    return {"model_path": path, "plot": args.out / ratio["plot"], "ratio_real": ratio["real_mean"],
            "ratio_sim": ratio["sim_mean"], "real_return": float(returns["real"]), "sim_return": float(returns["sim"]),
            "real_score": float(data.normalized_score(returns["real"]))}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # small networks: one thread is fastest, and runs are reproducible
    main()

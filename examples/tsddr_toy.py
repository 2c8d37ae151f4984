"""TS-DDR on the toy hydrothermal case, compared with SDDP, TS-LDR and the perfect-foresight bound.

The toy case (``envs.hydro``: 3 buses, a reservoir cascade, thermal units, 12 monthly stages, 20 inflow scenarios;
``HydroDispatch-Toy-v0`` is its Gymnasium version for SB3 baselines) is loaded as a ``HydroSystem``. ``TSDDR`` trains a
neural decision rule that sets the reservoirs' target volumes; HiGHS LPs dispatch the system to meet them, and the
LPs' duals on the target rows are the policy's gradient (no environment interaction). ``TSLDR`` is the same with an
affine rule, ``SDDP`` the classic stochastic dual dynamic programming baseline (Benders cuts), and the perfect-foresight
LP (each scenario solved knowing its whole inflow path) is a lower bound for any policy. All are scored on the same
held-out scenarios (the last quarter; training uses the others).

Run::

    python examples/tsddr_toy.py              # the benchmark's budget (20 epochs of 100 batches, SDDP 30 iterations)
    python examples/tsddr_toy.py --mode stage --epochs 50                # one LP per stage, realised volumes

Output (under ``--out``, default ``/tmp/frontier-rl-examples/tsddr``): ``tsddr_toy.pt`` (the TS-DDR model),
``sddp_cuts.json`` (SDDP's cuts), ``learning_curve.png`` (TS-DDR's training and held-out cost per epoch); the script
prints each method's held-out operating cost, its gap to perfect foresight and its ratio to SDDP.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from algos.hydro_common import perfect_foresight_costs
from algos.sddp import SDDP
from algos.tsddr import TSDDR, TSLDR
from algos.tsddr_cli import plot_learning_curve
from envs.hydro import load_system, toy_case_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="TS-DDR / TS-LDR training epochs")
    parser.add_argument("--batches-per-epoch", type=int, default=100, help="gradient steps per epoch (authors: 100)")
    parser.add_argument("--mode", choices=["stage", "horizon"], default="horizon",
                        help="horizon: one LP per scenario; stage: one LP per stage with realised volumes")
    parser.add_argument("--sddp-iterations", type=int, default=30, help="SDDP iterations (it may stop earlier)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/frontier-rl-examples/tsddr"), help="output folder")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    system = load_system(toy_case_path())

    rules = {}
    for name, cls in (("TS-DDR", TSDDR), ("TS-LDR", TSLDR)):
        model = cls(system, mode=args.mode, batches_per_epoch=args.batches_per_epoch, seed=args.seed, case="toy")
        model.learn(args.epochs, progress=args.progress)
        rules[name] = model
    tsddr = rules["TS-DDR"]
    holdout = tsddr.holdout_indices
    tsddr.save(args.out / "tsddr_toy.pt")

    sddp = SDDP(system, seed=args.seed, case="toy")
    sddp.train(args.sddp_iterations, progress=args.progress)
    sddp.save(args.out / "sddp_cuts.json")

    bound = perfect_foresight_costs(system, holdout)
    costs = {name: np.asarray(model.evaluate(holdout)["costs"]) for name, model in {**rules, "SDDP": sddp}.items()}
    costs["perfect foresight"] = bound
    print(f"held-out operating cost over scenarios {holdout.tolist()} ({args.epochs} epochs x "
          f"{args.batches_per_epoch} batches, SDDP {len(sddp.history)} iterations):")
    for name, values in costs.items():
        gap = 100.0 * (values.mean() / bound.mean() - 1.0)
        print(f"  {name:>17}: {values.mean():10,.0f}   gap to perfect foresight {gap:5.1f} %   "
              f"ratio to SDDP {values.mean() / costs['SDDP'].mean():.3f}")
    curve = plot_learning_curve(tsddr.history, args.out / "learning_curve.png", reference=float(bound.mean()),
                                title=f"TS-DDR ({args.mode} mode) on the toy case")
    print(f"saved {args.out / 'tsddr_toy.pt'}, {args.out / 'sddp_cuts.json'} and {curve}")
    return {"model_path": args.out / "tsddr_toy.pt", "sddp_path": args.out / "sddp_cuts.json", "curve": curve,
            "holdout": holdout, "costs": {name: float(values.mean()) for name, values in costs.items()},
            "model": tsddr}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # small networks: one thread is fastest, and runs are reproducible
    main()

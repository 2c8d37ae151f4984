"""Preferences over trajectory segments, shared by everything preference-based (SPO, OPPO, PARL, reward models).

What a preference-based run uses::

    from rl.preferences import collect_trajectories, sample_segments, make_rater, ComparisonQueue
    trajectories = collect_trajectories("HalfCheetah-v5", model, n_episodes=10, seed=0)   # or policy=None: random
    segments = sample_segments(trajectories, length=50, n=200, rng=0)
    rater = make_rater("noisy", flip_probability=0.2)        # bt, noisy, intransitive, nonmarkovian, file, human
    queue = ComparisonQueue()
    queue.compare_pairs(rater, list(zip(segments[::2], segments[1::2])), np.random.default_rng(0))
    queue.comparisons_used, queue.save("run/comparisons.npz")

    from rl.preferences import BradleyTerryRewardModel, RewardModelWrapper
    reward_model = BradleyTerryRewardModel(env.observation_space, env.action_space)
    reward_model.train(queue, epochs=10, rng=0)
    env = RewardModelWrapper(env, reward_model)               # any SB3 algorithm; true reward in info

Labels are P(first segment preferred): 1, 0, or 0.5 for "equally good". Modules: ``segments`` (Trajectory,
Segment, cutting, collection), ``raters`` (synthetic and human raters, ``make_rater``), ``label_files`` (query
and label files for people), ``queue`` (comparisons, their count, recent trajectories, save/load),
``reward_model`` (Bradley-Terry ensemble and reward wrappers), ``reward_terms`` (a locomotion reward's terms in
``info``, for the intransitive rater), ``recorder`` (a training run's steps as trajectories, reward replacement),
``win_rate`` (SPO's self-play win rates and their spread over steps), ``reward_learning`` (online reward-model
learning for any SB3 algorithm), ``errors``.
"""

from rl.preferences.errors import (
    ComparisonQueueError,
    LabelFileError,
    RewardModelError,
    SegmentError,
    UnknownRaterError,
)
from rl.preferences.label_files import LabelRow, read_label_file, write_query_file
from rl.preferences.queue import Comparison, ComparisonQueue
from rl.preferences.raters import (
    RATERS,
    BradleyTerryRater,
    HumanRater,
    IntransitiveRater,
    LabelFileRater,
    NoisyRater,
    NonMarkovianRater,
    Rater,
    Region,
    find_cycle,
    make_rater,
    myopic_return,
    preference_matrix,
    true_return,
)
from rl.preferences.recorder import RecordingCallback, TrajectoryRecorder
from rl.preferences.reward_learning import PreferenceRewardCallback
from rl.preferences.reward_model import BradleyTerryRewardModel, RewardModelVecEnvWrapper, RewardModelWrapper
from rl.preferences.reward_terms import RewardTermsInInfo
from rl.preferences.segments import Segment, Trajectory, collect_trajectories, sample_segments

__all__ = [
    "RATERS",
    "BradleyTerryRater",
    "BradleyTerryRewardModel",
    "Comparison",
    "ComparisonQueue",
    "ComparisonQueueError",
    "HumanRater",
    "IntransitiveRater",
    "LabelFileError",
    "LabelFileRater",
    "LabelRow",
    "NoisyRater",
    "NonMarkovianRater",
    "PreferenceRewardCallback",
    "Rater",
    "RecordingCallback",
    "Region",
    "RewardModelError",
    "RewardModelVecEnvWrapper",
    "RewardModelWrapper",
    "RewardTermsInInfo",
    "Segment",
    "SegmentError",
    "Trajectory",
    "TrajectoryRecorder",
    "UnknownRaterError",
    "collect_trajectories",
    "find_cycle",
    "make_rater",
    "myopic_return",
    "preference_matrix",
    "read_label_file",
    "sample_segments",
    "true_return",
    "write_query_file",
]

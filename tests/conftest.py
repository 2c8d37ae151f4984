"""Shared test settings: one torch thread for every test (faster on a busy 2-core machine, and bit-for-bit
reproducible, which the seeding tests rely on)."""

import pytest
import torch as th


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.fixture
def requested_devices(monkeypatch) -> list:
    """Every device SB3's ``BaseAlgorithm`` is asked for, in order: on a CPU-only machine "auto" and "cpu" give the
    same device, so settings tests check the request itself."""
    import stable_baselines3.common.base_class as base_class

    requested = []
    get_device = base_class.get_device
    monkeypatch.setattr(base_class, "get_device", lambda device="auto": requested.append(device) or get_device(device))
    return requested

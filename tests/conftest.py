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

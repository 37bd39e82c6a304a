"""Shared pytest configuration: Hypothesis profiles and common fixtures."""

import os
import sys

# Before anything imports torch: libgomp reads the wait policy once, when the first library starts it
# (see axiom.backends.c_kernels.warn_if_openmp_busy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=200, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _torch_grad_mode_enabled():
    """Each test starts with torch's default grad mode (a doctest may have switched it off globally)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_grad_enabled(True)
    yield

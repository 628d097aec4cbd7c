"""Fixtures shared by the built-in component tests."""

from __future__ import annotations

import pytest

from seldon_serving.state.base import StateHandle
from seldon_serving.state.memory import MemoryStore


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def handle(store: MemoryStore) -> StateHandle:
    return StateHandle(store, "test-deployment", "node")

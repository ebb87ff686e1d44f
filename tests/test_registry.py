import pytest

from tfnlp.errors import UserError
from tfnlp.registry import Registry


def test_registry_returns_registered_objects_and_lists_names():
    registry = Registry("thing")
    registry.add("b", 2)

    @registry.register()
    def a():
        return 1

    assert registry.get("a") is a and registry.get("b") == 2
    assert registry.names() == ["a", "b"] and "a" in registry


def test_registry_refuses_a_duplicate_name():
    registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", 2)


def test_unknown_name_lists_the_known_ones():
    registry = Registry("experiment")
    registry.add("icd10_seq2seq", 1)
    with pytest.raises(UserError, match="unknown experiment 'nope'; known: icd10_seq2seq"):
        registry.get("nope")

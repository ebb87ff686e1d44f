"""Name -> object registries that refuse duplicates and list known names on a miss."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tfnlp.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects (experiments, sources, models).

    Args:
        kind: what the registry holds, used in error messages ("experiment").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register `item` under `name`; a second registration of a name is a bug."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator form of `add`; the name defaults to the function's `__name__`."""

        def decorate(item: T) -> T:
            return self.add(name or item.__name__, item)  # type: ignore[attr-defined]

        return decorate

    def get(self, name: str) -> T:
        """Return the object registered as `name`, or a UserError listing the known names."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UserError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

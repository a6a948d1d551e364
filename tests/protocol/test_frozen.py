"""protocol.frozen: every class given a quick `__init__` keeps its dataclass's signature and instances."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import protocol
from protocol.frozen import quick_init


def _quick_classes() -> list[type]:
    found = []
    for module in pkgutil.walk_packages(protocol.__path__, "protocol."):
        for value in vars(importlib.import_module(module.name)).values():
            init = getattr(value, "__init__", None)
            if (
                isinstance(value, type)
                and hasattr(init, "dataclass_init")
                and value.__module__ == module.name
            ):
                found.append(value)
    return found


QUICK = _quick_classes()


def test_the_record_path_classes_are_quick() -> None:
    names = {cls.__name__ for cls in QUICK}
    assert {"Header", "UnverifiedRecord", "SignedRecord", "Record", "LeadBody", "Subject"} <= names
    assert {
        "ContactBody",
        "TrendBody",
        "ReferralBody",
        "ReferralStatusBody",
        "OpaqueBody",
        "SealedBody",
    } <= names


def _strip(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def _arguments(cls: type) -> tuple[list[object], dict[str, object]]:
    """A distinct object for every field, positional or by keyword as the signature wants."""
    positional: list[object] = []
    keywords: dict[str, object] = {}
    for field in dataclasses.fields(cls):
        value = object()
        if field.kw_only:
            keywords[field.name] = value
        else:
            positional.append(value)
    return positional, keywords


@pytest.mark.parametrize("cls", QUICK, ids=[cls.__name__ for cls in QUICK])
def test_signature_and_instances_are_the_dataclasses_own(cls: type) -> None:
    own = cls.__init__.dataclass_init  # type: ignore[misc]
    quick = inspect.signature(cls.__init__)  # type: ignore[misc]
    assert _strip(quick) == _strip(inspect.signature(own))
    for name, parameter in quick.parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default is inspect.signature(own).parameters[name].default
    positional, keywords = _arguments(cls)
    built = cls(*positional, **keywords)
    reference = object.__new__(cls)
    own(reference, *positional, **keywords)
    for field in dataclasses.fields(cls):
        assert getattr(built, field.name) is getattr(reference, field.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.__setattr__(dataclasses.fields(cls)[0].name, None)


def test_defaults_are_the_same_objects() -> None:
    @quick_init
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Example:
        a: int
        b: tuple[int, ...] = ()
        c: int | None = dataclasses.field(default=None, hash=False)

    example = Example(a=1)
    assert (example.a, example.b, example.c) == (1, (), None)
    assert example == Example(a=1, b=(), c=None)
    with pytest.raises(TypeError):
        Example(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Example()  # type: ignore[call-arg]


def _plain() -> type:
    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    return NotFrozen


def _unslotted() -> type:
    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        a: int

    return Unslotted


def _factory() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    return Factory


def _post_init() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    return PostInit


def _init_var() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: dataclasses.InitVar[int]

    return WithInitVar


def _not_in_init() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class NotInInit:
        a: int = dataclasses.field(default=0, init=False)

    return NotInInit


@pytest.mark.parametrize("make", [_plain, _unslotted, _factory, _post_init, _init_var, _not_in_init])
def test_a_class_it_cannot_reproduce_is_refused(make: Any) -> None:
    with pytest.raises(TypeError):
        quick_init(make())

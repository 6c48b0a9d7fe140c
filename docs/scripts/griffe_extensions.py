"""Griffe extensions for the API reference, loaded by mkdocs.yml.

- `AttrsInit`: keras-explainable declares its classes with `attrs`
  (`@attrs.define`, `@attrs.frozen`) and its small records as
  `typing.NamedTuple`s, so their `__init__` is generated at import time and
  static analysis sees none: the API reference would show `GradCAM()`. This
  extension rebuilds the signature from the declared fields, as attrs does:
  fields in definition order along the MRO (a field re-declared in a subclass
  moves to the subclass's place, and `init=False` drops it), `kw_only=True`
  fields after the others, `default=` and `factory=` as defaults, ClassVars
  left out.
- `SingularExample`: the docstrings head their examples `Example:`, as Google
  style (and Sphinx's Napoleon) allow; griffe only knows `Examples:`, and
  would render the `>>>` lines as nested quotes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ATTRS_DECORATORS = {
    "attrs.define",
    "attrs.frozen",
    "attrs.mutable",
    "attr.s",
    "attr.attrs",
    "attr.define",
    "attr.frozen",
    "attr.mutable",
}
_FIELD_FUNCTIONS = {"attrs.field", "attr.field", "attr.ib", "attr.attrib"}
_NAMED_TUPLE = {"typing.NamedTuple", "NamedTuple"}


def _call_path(expr: Any) -> str | None:
    """The canonical path of a decorator or call expression, without its call."""
    if isinstance(expr, griffe.ExprCall):
        expr = expr.function
    return getattr(expr, "canonical_path", None)


def _is_attrs(cls: griffe.Class) -> bool:
    return any(_call_path(d.value) in _ATTRS_DECORATORS for d in cls.decorators)


def _is_named_tuple(cls: griffe.Class) -> bool:
    return any(
        (base if isinstance(base, str) else getattr(base, "canonical_path", "")) in _NAMED_TUPLE
        for base in cls.bases
    )


def _field_arguments(attribute: griffe.Attribute) -> dict[str, Any] | None:
    """The keyword arguments of `attrs.field(...)`, or None for a plain default."""
    value = attribute.value
    if isinstance(value, griffe.ExprCall) and _call_path(value) in _FIELD_FUNCTIONS:
        return {
            argument.name: argument.value
            for argument in value.arguments
            if isinstance(argument, griffe.ExprKeyword)
        }
    return None


def _fields(cls: griffe.Class) -> list[tuple[str, griffe.Parameter | None]]:
    """This class's own fields, as `(name, parameter or None if not in init)`."""
    fields = []
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is None:
            continue
        labels = member.labels
        if "class-attribute" in labels and "instance-attribute" not in labels:
            continue  # a ClassVar
        if "property" in labels:
            continue
        arguments = _field_arguments(member)
        if arguments is None:
            default = member.value
            keyword_only = False
        else:
            if str(arguments.get("init", "True")) == "False":
                fields.append((member.name, None))
                continue
            keyword_only = str(arguments.get("kw_only", "False")) == "True"
            default = arguments.get("default")
            if "factory" in arguments:
                default = griffe.ExprCall(function=arguments["factory"], arguments=[])
        kind = (
            griffe.ParameterKind.keyword_only
            if keyword_only
            else griffe.ParameterKind.positional_or_keyword
        )
        parameter = griffe.Parameter(
            member.name.lstrip("_"),
            annotation=member.annotation,
            kind=kind,
            default=default,
            docstring=member.docstring,
        )
        fields.append((member.name, parameter))
    return fields


def _set_init(cls: griffe.Class) -> None:
    named_tuple = _is_named_tuple(cls)
    if "__init__" in cls.members or not (named_tuple or _is_attrs(cls)):
        return
    try:
        lineage = [*reversed(cls.mro()), cls]
    except ValueError:
        lineage = [cls]
    ordered: dict[str, griffe.Parameter | None] = {}
    for klass in lineage:
        if klass is not cls and not _is_attrs(klass):
            continue
        for name, parameter in _fields(klass):
            ordered.pop(name, None)  # a re-declared field moves to the subclass
            ordered[name] = parameter
    parameters = [p for p in ordered.values() if p is not None]
    positional = [p for p in parameters if p.kind is not griffe.ParameterKind.keyword_only]
    keyword = [p for p in parameters if p.kind is griffe.ParameterKind.keyword_only]
    init = griffe.Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=griffe.Parameters(
            griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
            *positional,
            *keyword,
        ),
        returns="None",
    )
    cls.set_member("__init__", init)


def _visit(obj: griffe.Module | griffe.Class, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if isinstance(obj, griffe.Class):
        _set_init(obj)
    for member in obj.members.values():
        if not member.is_alias and (member.is_module or member.is_class):
            _visit(member, seen)


class AttrsInit(griffe.Extension):
    """Synthesise `__init__` for attrs classes and NamedTuples of a package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Visit every class of the loaded package."""
        _visit(pkg, set())


_EXAMPLE_HEADER = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class SingularExample(griffe.Extension):
    """Read a docstring's `Example:` section as `Examples:`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rename the section header of each docstring as it is loaded."""
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADER.sub(r"\1Examples:", obj.docstring.value)

"""Pure: devnix's decisions written into the compose service a devcontainer.json runs.

The text is edited in place, not re-dumped: ruamel.yaml's round-trip parser gives the exact span of every
node, and only the spans devnix owns are replaced (or lines inserted after an entry, in the file's own
indentation and line endings). A full round-trip dump would re-indent sequences, realign comments and
normalise every other service, which is not ours to touch. After editing, the result is parsed again
and compared with the original: anything but the intended change is a bug, refused rather than written.

What devnix owns in the service: ``image`` (image-based services only), ``platform`` (set when the plan
pins one; a platform naming another machine is removed when the plan is native) and the ``environment``
entries it is given (a mapping or a list of ``KEY=VALUE``, whichever the file uses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from devnix import platforms
from devnix.errors import UsageError

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

_BOM = "\ufeff"
_HINT = "edit the service in the compose file by hand, or run `devnix init` in a fresh folder"


class ComposeRefused(UsageError):
    """A compose file devnix cannot edit safely; nothing is written."""


@dataclass(frozen=True)
class ServiceFacts:
    """How a compose file defines the service (files that only mention it define neither)."""

    image: bool
    build: bool
    platform: str | None = None


@cache
def _yaml() -> YAML:
    # Imported here: only compose configs pay ruamel.yaml's ~25 ms import.
    from ruamel.yaml import YAML

    return YAML(typ="rt")


def _compose(text: str, where: str) -> Node | None:
    from ruamel.yaml.error import YAMLError

    try:
        root: Node | None = _yaml().compose(text.removeprefix(_BOM))
        return root
    except YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ComposeRefused(f"{where} is not valid YAML: {first}", hint="fix it first") from None


def _load(text: str) -> Any:
    return _yaml().load(text.removeprefix(_BOM))


def _tag_is(node: Node, kind: str) -> bool:
    """Whether the node's resolved tag ends with ``kind`` (``:str``, ``:null``, ``:merge``)."""
    return bool(node.tag and node.tag.endswith(kind))


def _get(node: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
    """The (key, value) nodes of ``key`` in a mapping node."""
    from ruamel.yaml.nodes import MappingNode

    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if _tag_is(key_node, ":str") and key_node.value == key:
            return key_node, value_node
    return None


def _service(root: Node | None, service: str, where: str) -> tuple[ScalarNode, MappingNode] | None:
    from ruamel.yaml.nodes import MappingNode

    services = _get(root, "services")
    if services is None:
        return None
    entry = _get(services[1], service)
    if entry is None:
        return None
    key, node = entry
    if _tag_is(node, ":null"):
        return None
    if not isinstance(node, MappingNode):
        raise ComposeRefused(f"{where}: service {service!r} is not a mapping", hint="fix it first")
    return key, node


def service_facts(text: str, service: str, where: str) -> ServiceFacts | None:
    """Whether this compose file defines the service's ``image``/``build``; None if it has no such service."""
    found = _service(_compose(text, where), service, where)
    if found is None:
        return None
    platform = _get(found[1], "platform")
    return ServiceFacts(
        _get(found[1], "image") is not None,
        _get(found[1], "build") is not None,
        str(platform[1].value) if platform is not None else None,
    )


def edit_service(
    text: str,
    service: str,
    *,
    where: str,
    image: str | None,
    platform: str,
    pin: bool,
    environment: Mapping[str, str],
) -> str:
    """``text`` with the service's image, platform and environment set; unchanged text if already so.

    ``image`` None keeps the service's own (a build). With ``pin``, ``platform: PLATFORM`` is set;
    without, a ``platform`` naming another machine than ``platform`` is removed (the plan runs natively).
    """
    bom = _BOM if text.startswith(_BOM) else ""
    original = text = text.removeprefix(bom)  # node spans count from after a BOM
    _check_safe(text, service, where)
    if image is not None:
        text = _set_entry(text, service, where, ("image",), image)
    text = _set_platform(text, service, where, platform, pin)
    for name, value in environment.items():
        # Compose interpolates $VAR in values; $$ is a literal $.
        text = _set_environment(text, service, where, name, value.replace("$", "$$"))
    if text != original:
        _verify(original, text, service, where, image, platform, pin, environment)
    return bom + text


# ------------------------------------------------------------------------------------------------
# Safety


def _check_safe(text: str, service: str, where: str) -> None:
    """Refuse anchors and merge keys where an edit would change other services or lose inherited keys."""
    found = _service(_compose(text, where), service, where)
    if found is None:
        raise ComposeRefused(f"{where} has no service {service!r}", hint=_HINT)
    _, node = found
    if node.flow_style:
        raise ComposeRefused(f"{where}: service {service!r} is written in flow style ({{...}})", hint=_HINT)
    if node.anchor is not None:
        raise ComposeRefused(
            f"{where}: service {service!r} carries the anchor &{node.anchor}; editing it would change "
            "every alias of it too",
            hint=_HINT,
        )
    for key, value in node.value:
        if _tag_is(key, ":merge"):
            raise ComposeRefused(
                f"{where}: service {service!r} inherits keys with a YAML merge key (<<); devnix would "
                "override what it inherits",
                hint=_HINT,
            )
        if key.value in ("image", "platform", "environment") and value.anchor is not None:
            raise ComposeRefused(
                f"{where}: {service}.{key.value} is shared through the anchor &{value.anchor}",
                hint=_HINT,
            )
        if key.value == "environment" and getattr(value, "flow_style", False):
            raise ComposeRefused(
                f"{where}: {service}.environment is written in flow style", hint="write it as a block"
            )
        if key.value == "environment" and _is_collection(value):
            for item in _items(value):
                if item.anchor is not None:
                    raise ComposeRefused(
                        f"{where}: {service}.environment shares a value through &{item.anchor}", hint=_HINT
                    )


def _is_collection(node: Node) -> bool:
    return isinstance(node.value, list)


def _items(node: Node) -> list[Node]:
    """The values of a mapping node, or the items of a sequence node."""
    return [item[1] if isinstance(item, tuple) else item for item in node.value]


def _verify(
    before: str,
    after: str,
    service: str,
    where: str,
    image: str | None,
    platform: str,
    pin: bool,
    environment: Mapping[str, str],
) -> None:
    """The edited file must mean the original plus devnix's keys, and nothing else."""
    old, new = _load(before), _load(after)
    old_service = dict(old["services"][service])
    new_service = dict(new["services"][service])
    for key in ("image", "platform", "environment"):
        old_service.pop(key, None)
    old_env = _as_dict(dict(old["services"][service]).get("environment"))
    new_env = _as_dict(new_service.pop("environment", None))
    expected_env = {**old_env, **{k: v.replace("$", "$$") for k, v in environment.items()}}
    new_image, new_platform = new_service.pop("image", None), new_service.pop("platform", None)
    old_platform = dict(old["services"][service]).get("platform")
    ok = new_env == expected_env and new_service == old_service
    if image is not None:
        ok = ok and new_image == image
    else:
        ok = ok and new_image == dict(old["services"][service]).get("image")
    ok = ok and (new_platform == platform if pin else new_platform in (None, old_platform))
    old_rest = {k: v for k, v in old.items() if k != "services"}
    new_rest = {k: v for k, v in new.items() if k != "services"}
    others = {k: v for k, v in old["services"].items() if k != service}
    new_others = {k: v for k, v in new["services"].items() if k != service}
    if not (ok and old_rest == new_rest and others == new_others):
        raise ComposeRefused(
            f"{where}: devnix could not edit service {service!r} without changing more than its own keys",
            hint=_HINT,
        )


def _as_dict(environment: Any) -> dict[str, Any]:
    if environment is None:
        return {}
    if isinstance(environment, list):
        return dict(
            (str(item).split("=", 1)[0], str(item).split("=", 1)[1] if "=" in str(item) else None)
            for item in environment
        )
    return {str(k): v for k, v in environment.items()}


# ------------------------------------------------------------------------------------------------
# Edits: each one parses the current text again, so spans are always fresh.


def _set_entry(text: str, service: str, where: str, path: tuple[str, ...], value: str) -> str:
    """Set ``service.path`` (a scalar) to ``value``, creating the missing mappings on the way."""
    from ruamel.yaml.nodes import MappingNode

    found = _service(_compose(text, where), service, where)
    assert found is not None  # checked by _check_safe
    parent_key: ScalarNode = found[0]
    node: Node = found[1]
    unit = _indent_unit(found[0], found[1])
    for depth, key in enumerate(path):
        if _is_empty(node):  # `environment:` with nothing under it yet
            return _insert_entry(text, parent_key, None, path[depth:], value, unit)
        if not isinstance(node, MappingNode) or node.flow_style:
            raise ComposeRefused(
                f"{where}: {service}.{'.'.join(path[:depth])} is not a block mapping", hint=_HINT
            )
        entry = _get(node, key)
        if entry is None:
            return _insert_entry(text, parent_key, node, path[depth:], value, unit)
        parent_key, child = entry
        if depth == len(path) - 1:
            if _tag_is(child, ":str") and child.value == value:
                return text
            if _is_collection(child):
                raise ComposeRefused(f"{where}: {service}.{'.'.join(path)} is not a plain value", hint=_HINT)
            if _is_empty(child):
                # `key:` with nothing after it: the empty scalar's span points at the next token.
                end = _colon_end(text, parent_key.end_mark.index)
                return text[:end] + f" {_scalar(value, None)}" + text[end:]
            return _replace(text, child, _scalar(value, getattr(child, "style", None)))
        node = child
    raise AssertionError("unreachable")


def _is_empty(node: Node) -> bool:
    """A null written as nothing at all (``key:``), whose span is not where the key is."""
    return bool(_tag_is(node, ":null") and node.start_mark.index == node.end_mark.index)


def _colon_end(text: str, key_end: int) -> int:
    """The index just past the ``:`` that follows a key ending at ``key_end``."""
    match = re.compile(r"[ \t]*:").match(text, key_end)
    assert match is not None
    return match.end()


def _set_platform(text: str, service: str, where: str, platform: str, pin: bool) -> str:
    if pin:
        return _set_entry(text, service, where, ("platform",), platform)
    found = _service(_compose(text, where), service, where)
    assert found is not None
    entry = _get(found[1], "platform")
    if entry is None:
        return text
    key, value = entry
    try:
        current = platforms.parse(str(value.value))
    except UsageError:
        return text  # not a platform devnix would have written: the user's business
    if current.same_machine(platforms.parse(platform)):
        return text
    # Remove the whole `platform: ...` line (with its comment): the plan runs natively.
    start = text.rfind("\n", 0, key.start_mark.index) + 1
    end = text.find("\n", value.end_mark.index)
    return text[:start] + (text[end + 1 :] if end >= 0 else "")


def _set_environment(text: str, service: str, where: str, name: str, value: str) -> str:
    from ruamel.yaml.nodes import SequenceNode

    found = _service(_compose(text, where), service, where)
    assert found is not None
    entry = _get(found[1], "environment")
    if entry is None or not isinstance(entry[1], SequenceNode):
        return _set_entry(text, service, where, ("environment", name), value)
    _, sequence = entry
    wanted = f"{name}={value}"
    for item in sequence.value:
        if not _tag_is(item, ":str"):
            continue
        item_name = str(item.value).split("=", 1)[0]
        if item_name == name:
            return text if item.value == wanted else _replace(text, item, _scalar(wanted, item.style))
    # Append a `- NAME=VALUE` line with the prefix ("      - ") the last item's line uses.
    last = sequence.value[-1]
    line_start = text.rfind("\n", 0, last.start_mark.index) + 1
    prefix = text[line_start : last.start_mark.index]
    if prefix.strip() != "-":
        raise ComposeRefused(
            f"{where}: {service}.environment is laid out in a way devnix cannot extend", hint=_HINT
        )
    return _insert_after(text, last, prefix + _scalar(wanted, None))


def _insert_entry(
    text: str,
    parent_key: ScalarNode,
    mapping: MappingNode | None,
    path: tuple[str, ...],
    value: str,
    unit: int,
) -> str:
    """Add ``path[0]: ...`` (nested mappings for the rest of ``path``) as the last entry of ``mapping``.

    ``mapping`` None: ``parent_key`` has no value yet, the entry goes on the line after it.
    """
    if mapping is not None and mapping.value:
        column = int(mapping.value[0][0].start_mark.column)
        anchor: Node = mapping.value[-1][1]
        after_key: ScalarNode | None = mapping.value[-1][0]
    else:
        column = int(parent_key.start_mark.column) + unit
        anchor, after_key = parent_key, None
    lines = []
    for depth, key in enumerate(path):
        indent = " " * (column + depth * unit)
        lines.append(f"{indent}{key}:" + (f" {_scalar(value, None)}" if depth == len(path) - 1 else ""))
    return _insert_after(text, anchor, "\n".join(lines), key=after_key)


def _indent_unit(service_key: ScalarNode, service: MappingNode) -> int:
    """The file's mapping indentation step, from the service's keys (2 when it cannot tell)."""
    if service.value:
        step = int(service.value[0][0].start_mark.column) - int(service_key.start_mark.column)
        if step > 0:
            return step
    return 2


def _insert_after(text: str, node: Node, line: str, *, key: ScalarNode | None = None) -> str:
    """Insert ``line`` (without a line break) on a new line after everything ``node`` spans."""
    newline = "\r\n" if "\r\n" in text else "\n"
    line = line.replace("\n", newline)
    leaf, leaf_key = _last_leaf(node, key)
    if getattr(leaf, "style", None) in ("|", ">"):
        # A block scalar's span ends at the start of the line after it.
        position = leaf.end_mark.index
        return text[:position] + line + newline + text[position:]
    # `key:` with an empty value: its span points at the next token, so the key's line is the end.
    end = leaf_key.end_mark.index if leaf_key is not None and _is_empty(leaf) else leaf.end_mark.index
    line_end = text.find("\n", end)
    if line_end < 0:
        return text + newline + line
    if text[line_end - 1 : line_end] == "\r":
        line_end -= 1
    return text[:line_end] + newline + line + text[line_end:]


def _last_leaf(node: Node, key: ScalarNode | None) -> tuple[Node, ScalarNode | None]:
    """The last scalar (or flow collection) inside ``node``, and the key it is the value of."""
    while _is_collection(node) and node.value and not getattr(node, "flow_style", False):
        last = node.value[-1]
        if isinstance(last, tuple):
            key, node = last
        else:
            key, node = None, last
    return node, key


def _replace(text: str, node: Node, replacement: str) -> str:
    return text[: node.start_mark.index] + replacement + text[node.end_mark.index :]


_PLAIN = re.compile(r"[A-Za-z0-9_./@${}][A-Za-z0-9_./:@=+,${}~-]*")


def _scalar(value: str, style: str | None) -> str:
    """``value`` as a YAML scalar: in the quoting the old value used, else plain when that reads back."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not (_PLAIN.fullmatch(value) and _load(value) == value):
        return json.dumps(value, ensure_ascii=False)
    return value

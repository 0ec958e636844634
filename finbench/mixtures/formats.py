"""Dataset formats: how one external row becomes chat messages. A new format = one class + one entry.

`format:` in a mixture is a preset name (`alpaca`, `sharegpt`, `messages`, optionally with
`field:`), an explicit field mapping `{system?, user, assistant}` (type `fields`), or a `template`
with `{column}` placeholders (substituted by a regex, never str.format or eval).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from finbench.core import validate as V
from finbench.mixtures.errors import err

Messages = list[dict[str, str]]
Rendered = tuple[Messages | None, str]  # (messages, "") or (None, why the row is malformed)

ROLE_ALIASES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}


class Format(Protocol):
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...

    def columns(self) -> list[str]:
        """Columns the first row must have (checked before the expensive pass)."""
        ...

    def string_columns(self) -> tuple[list[str], list[str]] | None:
        """(required, optional) string columns when a row is valid iff those hold text, else None."""
        ...

    def render(self, row: dict[str, Any]) -> Rendered: ...


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _no_extra(where: str, key: str, fmt: dict[str, Any], allowed: set[str], kind: str) -> None:
    extra = set(fmt) - allowed
    if extra:
        raise err(where, key, f"unknown key(s) {sorted(extra)} for format {V.short(kind)}")


@dataclass(frozen=True)
class FieldsFormat:
    """An explicit mapping of columns to roles; an empty or missing system column is skipped."""

    type: ClassVar[str] = "fields"
    user: str
    assistant: str
    system: str | None = None

    @classmethod
    def parse(cls, where: str, key: str, fmt: dict[str, Any]) -> FieldsFormat:
        extra = set(fmt) - {"type", "system", "user", "assistant"}
        if extra:
            raise err(
                where,
                key,
                f"unknown field-mapping key(s) {sorted(extra)}; expected system (optional), user, assistant",
            )
        for need in ("user", "assistant"):
            if not isinstance(fmt.get(need), str) or not fmt[need]:
                raise err(where, f"{key}.{need}", f"expected a column name, got {fmt.get(need)!r}")
        if "system" in fmt and not isinstance(fmt["system"], str):
            raise err(where, f"{key}.system", f"expected a column name, got {V.short(fmt['system'])}")
        return cls(fmt["user"], fmt["assistant"], fmt.get("system"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "fields"}
        if self.system is not None:
            out["system"] = self.system
        return {**out, "user": self.user, "assistant": self.assistant}

    def columns(self) -> list[str]:
        return [c for c in (self.system, self.user, self.assistant) if c is not None]

    def string_columns(self) -> tuple[list[str], list[str]]:
        return [self.user, self.assistant], [self.system] if self.system else []

    def render(self, row: dict[str, Any]) -> Rendered:
        msgs: Messages = []
        for role, col in (("system", self.system), ("user", self.user), ("assistant", self.assistant)):
            if col is None:
                continue
            value = row.get(col)
            if role == "system":
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue  # OpenOrca leaves many system prompts empty
                if not isinstance(value, str):
                    return None, f"{V.short(col)} is not a string"
            elif _text(value) is None:
                return None, f"{V.short(col)} missing or empty"
            msgs.append({"role": role, "content": value})
        return msgs, ""


@dataclass(frozen=True)
class AlpacaFormat:
    """instruction (+ input) -> user, output -> assistant, an optional system column."""

    type: ClassVar[str] = "alpaca"
    join: str = "\n\n"  # between instruction and input; LlamaFactory (the study) joins with "\n"

    @classmethod
    def parse(cls, where: str, key: str, fmt: dict[str, Any]) -> AlpacaFormat:
        _no_extra(where, key, fmt, {"type", "join"}, cls.type)
        join = fmt.get("join", "\n\n")
        if not isinstance(join, str):
            raise err(where, f"{key}.join", f"expected a string, got {V.short(join)}")
        return cls(join)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type} if self.join == "\n\n" else {"type": self.type, "join": self.join}

    def columns(self) -> list[str]:
        return ["instruction", "output"]

    def string_columns(self) -> tuple[list[str], list[str]]:
        return ["instruction", "output"], ["input", "system"]

    def render(self, row: dict[str, Any]) -> Rendered:
        instr, inp, out = row.get("instruction"), row.get("input"), row.get("output")
        if _text(instr) is None:
            return None, "'instruction' missing or empty"
        if _text(out) is None:
            return None, "'output' missing or empty"
        if inp is not None and not isinstance(inp, str):
            return None, "'input' is not a string"
        system = row.get("system")
        msgs: Messages = [{"role": "system", "content": system}] if _text(system) else []
        user = f"{instr}{self.join}{inp}" if inp and inp.strip() else instr
        return msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": out}], ""


@dataclass(frozen=True)
class TurnsFormat:
    """A list of turns in one column; subclasses name the column and the turn keys."""

    type: ClassVar[str] = ""
    default_field: ClassVar[str] = ""
    role_key: ClassVar[str] = ""
    content_key: ClassVar[str] = ""
    field: str = ""

    @classmethod
    def parse(cls, where: str, key: str, fmt: dict[str, Any]) -> TurnsFormat:
        _no_extra(where, key, fmt, {"type", "field"}, cls.type)
        return cls(str(fmt.get("field", cls.default_field)))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "field": self.field}

    def columns(self) -> list[str]:
        return [self.field]

    def string_columns(self) -> None:
        return None

    def render(self, row: dict[str, Any]) -> Rendered:
        turns = row.get(self.field)
        if not isinstance(turns, list) or not turns:
            return None, f"{V.short(self.field)} missing or not a non-empty list"
        rk, ck = self.role_key, self.content_key
        msgs: Messages = []
        for t in turns:
            if not isinstance(t, dict):
                return None, f"{V.short(self.field)} holds a non-mapping turn"
            role = ROLE_ALIASES.get(str(t.get(rk, "")).lower())
            if role is None:
                return None, f"unknown role {t.get(rk)!r}"
            content = t.get(ck)
            if not isinstance(content, str):
                return None, f"turn {rk}={t.get(rk)!r} has no string {V.short(ck)}"
            if role == "system" and msgs:
                return None, "system turn after the first turn"
            msgs.append({"role": role, "content": content})
        roles = [m["role"] for m in msgs]
        if "user" not in roles or roles[-1] != "assistant":
            return None, "needs a user turn and must end with an assistant turn"
        if not all(m["content"].strip() for m in msgs if m["role"] != "system"):
            return None, "empty user or assistant turn"
        return msgs, ""


class ShareGPTFormat(TurnsFormat):
    type: ClassVar[str] = "sharegpt"
    default_field: ClassVar[str] = "conversations"
    role_key: ClassVar[str] = "from"
    content_key: ClassVar[str] = "value"


class MessagesFormat(TurnsFormat):
    type: ClassVar[str] = "messages"
    default_field: ClassVar[str] = "messages"
    role_key: ClassVar[str] = "role"
    content_key: ClassVar[str] = "content"


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _placeholders(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


@dataclass(frozen=True)
class TemplateFormat:
    """Turns written as templates over the row's columns: `{column}` is the column's text.

    `user` is one template or a list of parts joined by `join` with empty parts skipped
    (LlamaFactory's alpaca join: instruction + "\n" + input). `values` maps a column's values to
    text (an int label -> its name; a value not in the map is kept, as the study's `MAP.get(x, x)`
    does, so a set whose labels are already text renders the same); `after` keeps `value.split(marker)[1]` of a column (FinQA's
    question after "\nContext: "). `{{` and `}}` are literal braces.
    """

    type: ClassVar[str] = "template"
    user: tuple[str, ...]
    assistant: str
    system: str | None = None
    join: str = "\n"
    values: dict[str, dict[Any, str]] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, where: str, key: str, fmt: dict[str, Any]) -> TemplateFormat:
        _no_extra(where, key, fmt, {"type", "user", "assistant", "system", "join", "values", "after"}, cls.type)
        user = [fmt.get("user")] if isinstance(fmt.get("user"), str) else fmt.get("user")
        if not isinstance(user, list) or not user or not all(isinstance(u, str) and u for u in user):
            raise err(where, f"{key}.user", f"expected a template or a list of them, got {fmt.get('user')!r}")
        for k in ("assistant", "system", "join"):
            if (k in fmt or k == "assistant") and not isinstance(fmt.get(k), str):
                raise err(where, f"{key}.{k}", f"expected a string, got {fmt.get(k)!r}")
        values, after = fmt.get("values", {}), fmt.get("after", {})
        if not isinstance(values, dict) or not all(
            isinstance(m, dict) and m and all(isinstance(v, str) for v in m.values()) for m in values.values()
        ):
            raise err(where, f"{key}.values", f"expected column -> {{value: text}}, got {V.short(values)}")
        if not isinstance(after, dict) or not all(isinstance(v, str) and v for v in after.values()):
            raise err(where, f"{key}.after", f"expected column -> marker text, got {V.short(after)}")
        out = cls(tuple(user), fmt["assistant"], fmt.get("system"), fmt.get("join", "\n"), values, after)
        unused = sorted((set(values) | set(after)) - set(out.columns()))
        if unused:
            raise err(where, key, f"values/after name column(s) {unused} that no template uses")
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "user": list(self.user), "assistant": self.assistant}
        if self.system is not None:
            out["system"] = self.system
        out["join"] = self.join
        if self.values:
            out["values"] = {c: {str(k): v for k, v in m.items()} for c, m in self.values.items()}
        if self.after:
            out["after"] = dict(self.after)
        return out

    def columns(self) -> list[str]:
        found = [c for t in (*self.user, self.assistant, self.system or "") for c in _placeholders(t)]
        return list(dict.fromkeys(found))

    def string_columns(self) -> tuple[list[str], list[str]] | None:
        if self.values or self.after:
            return None  # mapped or split columns: checked by rendering each row
        required = _placeholders(self.assistant)
        return required, [c for c in self.columns() if c not in required]

    def _value(self, row: dict[str, Any], col: str) -> str:
        value = row.get(col)
        if col in self.after:
            if not isinstance(value, str) or self.after[col] not in value:
                raise ValueError(f"{V.short(col)} lacks the marker {V.short(self.after[col])}")
            value = value.split(self.after[col])[1]
        if col in self.values and isinstance(value, str | int | float) and value in self.values[col]:
            return self.values[col][value]  # else kept as is: the study's `MAP.get(x, x)`
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"{V.short(col)} missing or not text")
        return value

    def _fill(self, template: str, row: dict[str, Any]) -> str:
        def sub(m: re.Match[str]) -> str:
            return self._value(row, m.group(1)) if m.group(1) else m.group(0)[0]

        return _PLACEHOLDER.sub(sub, template)

    def render(self, row: dict[str, Any]) -> Rendered:
        try:
            user = self.join.join(p for p in (self._fill(t, row) for t in self.user) if p)
            assistant = self._fill(self.assistant, row)
            system = self._fill(self.system, row) if self.system is not None else ""
        except ValueError as exc:
            return None, str(exc)
        if not user.strip() or not assistant.strip():
            return None, "empty user or assistant turn"
        msgs: Messages = [{"role": "system", "content": system}] if system.strip() else []
        return msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], ""


# The registry `format:` names. A mapping without `type:` is a field mapping.
FORMATS: dict[str, Any] = {
    "alpaca": AlpacaFormat,
    "sharegpt": ShareGPTFormat,
    "messages": MessagesFormat,
    "fields": FieldsFormat,
    "template": TemplateFormat,
}
PRESET_FORMATS = tuple(k for k in FORMATS if k not in ("fields", "template"))


def parse_format(where: str, key: str, fmt: Any) -> Format:
    """The `format:` of a dataset: a preset name, {type, ...}, or a field mapping."""
    if isinstance(fmt, str):
        fmt = {"type": fmt}
    if not isinstance(fmt, dict) or not fmt:
        raise err(
            where,
            key,
            f"expected one of {list(PRESET_FORMATS)} or a field mapping "
            f"{{system?, user, assistant}}, got {V.short(fmt)}",
        )
    kind = fmt.get("type", "fields")
    if not isinstance(kind, str) or kind not in FORMATS:
        raise err(where, f"{key}.type", f"expected one of {list(FORMATS)}, got {V.short(kind)}")
    return FORMATS[kind].parse(where, key, fmt)


def render_row(fmt: Format, row: dict[str, Any]) -> Rendered:
    """Chat messages for one external row, or (None, reason) when it is malformed."""
    return fmt.render(row)

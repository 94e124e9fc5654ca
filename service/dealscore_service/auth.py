"""API keys: hashed at rest, scoped, optionally limited to some owners or teams.

Keys are long random tokens, so a single SHA-256 is the right hash: a slow
password hash (bcrypt, scrypt) protects guessable secrets and would add
milliseconds to every request for no gain. The service only ever holds the
hashes; the raw key is shown once, when it is created (``dealscore api-key create``).

Three scopes: ``score`` for the CRM integration that posts deals, ``read`` for
managers' views (at-risk list, score histories), ``admin`` for model reloads;
``admin`` includes the other two. A key limited to owners and/or teams only
ever sees (and may only score) deals of those owners or teams: that check is
:meth:`Principal.can_see`, applied to every object the key touches.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dealscore.errors import ConfigError
from dealscore_service.errors import AuthenticationError

HASH_PREFIX = "sha256:"
KEY_PREFIX = "dsk_"


class Scope(StrEnum):
    """What a key may do."""

    score = "score"
    read = "read"
    admin = "admin"


def hash_key(raw_key: str) -> str:
    """The stored form of a key: ``sha256:<hex>``."""
    return HASH_PREFIX + hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A new random key (256 bits of entropy, URL-safe)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyEntry(BaseModel):
    """One key as written in the keys file or ``DEALSCORE_API_KEYS``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="who or what uses the key; appears in logs instead of the key")
    hash: str = Field(description="sha256:<64 hex digits> of the key")
    scopes: list[Scope] = Field(min_length=1)
    owners: list[str] = Field(default_factory=list, description="if set, only deals of these owners")
    teams: list[str] = Field(default_factory=list, description="if set, only deals of these teams")

    @field_validator("hash")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        digest = value.removeprefix(HASH_PREFIX).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("must be 'sha256:' followed by 64 hex digits (dealscore api-key create writes it)")
        return HASH_PREFIX + digest


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a key's name, scopes and owner/team limits."""

    name: str
    scopes: frozenset[Scope]
    owners: frozenset[str] = field(default_factory=frozenset)
    teams: frozenset[str] = field(default_factory=frozenset)

    @property
    def limited(self) -> bool:
        """Whether the key only sees some owners' or teams' deals."""
        return bool(self.owners or self.teams)

    def has(self, scope: Scope) -> bool:
        """``admin`` implies every scope."""
        return scope in self.scopes or Scope.admin in self.scopes

    def can_see(self, owner_id: str | None, team: str | None) -> bool:
        """Object-level authorization: may this key see a deal with this owner and team?"""
        if not self.limited:
            return True
        return (owner_id is not None and owner_id in self.owners) or (team is not None and team in self.teams)


class KeyRing:
    """The configured keys, looked up by hash."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self._by_hash: dict[str, Principal] = {}
        for e in entries:
            if e.hash in self._by_hash:
                raise ConfigError(f"API key {e.name!r} has the same hash as key {self._by_hash[e.hash].name!r}")
            self._by_hash[e.hash] = Principal(e.name, frozenset(e.scopes), frozenset(e.owners), frozenset(e.teams))

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, raw_key: str | None) -> Principal:
        """The principal of a raw key; :class:`AuthenticationError` (401) for none or an unknown one."""
        if not raw_key:
            raise AuthenticationError(
                "missing API key",
                fix="send the key in the X-API-Key header (or Authorization: Bearer <key>)",
            )
        principal = self._by_hash.get(hash_key(raw_key.strip()))
        if principal is None:
            hint = "" if self._by_hash else " (the service has no keys configured)"
            raise AuthenticationError(
                f"unknown API key{hint}",
                fix="check the key; create one with `dealscore api-key create` and configure the service "
                "with DEALSCORE_API_KEYS_FILE or DEALSCORE_API_KEYS",
            )
        return principal

    def principal_for_hash(self, key_hash: str) -> Principal | None:
        """The principal of a stored key hash (the web page's session cookie keeps the hash, never the key)."""
        return self._by_hash.get(key_hash)

    @classmethod
    def from_config(cls, raw: Any, source: str) -> KeyRing:
        """Build from the parsed file/env structure: ``{"keys": [...]}`` or a bare list."""
        items = raw.get("keys", []) if isinstance(raw, dict) else raw
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ConfigError(f"{source}: expected a list of keys under 'keys', got {type(items).__name__}")
        entries = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and "key" in item:
                raise ConfigError(
                    f"{source}: key #{i + 1} ({item.get('name', 'unnamed')!r}) holds a raw key; the service only "
                    f"accepts hashes, so a leaked config file leaks no key. Replace it with "
                    f"hash: {hash_key(str(item['key']))} (or create keys with `dealscore api-key create`)"
                )
            try:
                entries.append(KeyEntry.model_validate(item))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ConfigError(f"{source}: key #{i + 1} is invalid: {problems}") from exc
        return cls(entries)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        """Load a YAML or JSON keys file."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"API keys file {p} does not exist; create it with `dealscore api-key create --file {p}`")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8"))  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise ConfigError(f"API keys file {p} is not valid YAML/JSON: {exc}") from exc
        return cls.from_config(raw or {}, str(p))

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        """Load the env form (``DEALSCORE_API_KEYS``)."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"DEALSCORE_API_KEYS is not valid JSON: {exc}") from exc
        return cls.from_config(raw, "DEALSCORE_API_KEYS")

    @classmethod
    def merged(cls, *rings: KeyRing) -> KeyRing:
        """One ring holding the keys of several (file + env)."""
        out = cls()
        for ring in rings:
            for h, p in ring._by_hash.items():
                if h in out._by_hash:
                    raise ConfigError(f"API key {p.name!r} is configured twice (file and env)")
                out._by_hash[h] = p
        return out


def add_key_to_file(
    path: str | Path, *, name: str, scopes: Iterable[str], owners: Iterable[str] = (), teams: Iterable[str] = (),
) -> str:
    """Create a key, append its hashed entry to a YAML keys file, and return the raw key (shown once)."""
    p = Path(path)
    raw: dict[str, Any] = {"keys": []}
    if p.is_file():
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        raw = loaded if isinstance(loaded, dict) else {"keys": loaded}
        raw.setdefault("keys", [])
    if any(k.get("name") == name for k in raw["keys"]):
        raise ConfigError(f"{p} already has a key named {name!r}; pick another name or remove the old entry")
    key = generate_key()
    entry = KeyEntry(name=name, hash=hash_key(key), scopes=[Scope(s) for s in scopes],
                     owners=list(owners), teams=list(teams))
    raw["keys"].append(entry.model_dump(mode="json", exclude_defaults=True) | {"hash": entry.hash})
    KeyRing.from_config(raw, str(p))  # refuse to write a file the service could not load
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return key

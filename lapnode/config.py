"""A node's settings: `config.toml` in the node home.

Rule 1: a `Config` is always valid. It is built only by `Config.create` (from `lapnode init` flags) or
`load_config` (from the file), and both run the same checks, so a hand-edited file gets the same one-line
errors as a mistyped flag.
Rule 2: unknown settings are an error, not ignored: a typo such as `jurisdicton = "NL"` must not silently
fall back to something else.
Rule 3: the file is written by hand (it is a few lines; no TOML writer dependency) with mode 0600, because
a PostgreSQL URL in it may carry a password. Strings are written as JSON strings, which are valid TOML
basic strings, and the one list (`authorities`) as a JSON array of them, a valid TOML array;
`render_config` output is checked to round-trip through `tomllib` in the tests.
Rule 4: `authorities` lists the network authorities this node trusts (protocol/SPEC.md §8). Empty means
legacy mode: peers are admitted by the operator's pins alone. Changing it rewrites the whole file
(`update_config`, atomically), so comments an operator added by hand are not kept.
Rule 5: `[retention]` maps a record kind to how long this node keeps records of that kind ("365d"; "0"
keeps them), and `purge_interval` is how often the daemon purges what is due (SPEC §4, §8.10;
docs/policy.md, "Retention"). Both are durations written as text, like every other setting.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from keys.errors import InvalidAuthorityId
from keys.membership import authority_id, parse_authority_id
from lapnode.clock import parse_duration_ms
from lapnode.errors import ConfigError, InputError
from lapnode.files import write_private_file
from protocol.kinds import SCHEMA_VERSIONS
from protocol.kinds.codes import COUNTRY_CODES, country_hint
from protocol.scope import CATEGORIES

DEFAULT_LISTEN: Final = "127.0.0.1:7450"
DEFAULT_NETWORK: Final = "ucenet"
DATABASE_SCHEMES: Final = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
DEFAULT_PURGE_INTERVAL: Final = "60s"
_SETTINGS: Final = (
    "org",
    "jurisdiction",
    "category",
    "network",
    "listen",
    "database",
    "authorities",
    "purge_interval",
    "retention",
)
_NOT_PLAIN: Final = frozenset({"authorities", "retention"})
_REQUIRED: Final = frozenset({"org", "jurisdiction", "category"})
_MAX_ORG_LENGTH: Final = 200
_NETWORK = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LISTEN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})")


@dataclass(frozen=True, slots=True)
class Config:
    """A validated node configuration. `database` is None for the default SQLite file in the home."""

    org: str
    jurisdiction: str
    category: str
    network: str = DEFAULT_NETWORK
    listen: str = DEFAULT_LISTEN
    database: str | None = None
    # Authority ids (`lapauth1...`), canonical, sorted and distinct; empty is legacy mode (Rule 4).
    authorities: tuple[str, ...] = ()
    # Rule 5: how often the daemon purges, and (kind, duration text) pairs sorted by kind, "0" kept out.
    purge_interval: str = DEFAULT_PURGE_INTERVAL
    retention: tuple[tuple[str, str], ...] = ()

    @classmethod
    def create(
        cls,
        *,
        org: str,
        jurisdiction: str,
        category: str,
        network: str = DEFAULT_NETWORK,
        listen: str = DEFAULT_LISTEN,
        database: str | None = None,
        authorities: Iterable[str] = (),
        purge_interval: str = DEFAULT_PURGE_INTERVAL,
        retention: Mapping[str, object] | None = None,
    ) -> Config:
        return cls(
            org=check_org(org),
            jurisdiction=check_jurisdiction(jurisdiction),
            category=check_category(category),
            network=check_network(network),
            listen=check_listen(listen),
            database=check_database_url(database) if database is not None else None,
            authorities=check_authorities(authorities),
            purge_interval=check_purge_interval(purge_interval),
            retention=check_retention(retention or {}),
        )

    def retention_ms(self) -> dict[str, int]:
        """Kind -> how long records of it are kept, in milliseconds (kinds kept for ever are absent)."""
        return {kind: _duration_ms(text) for kind, text in self.retention}

    def purge_interval_s(self) -> float:
        return _duration_ms(self.purge_interval) / 1000

    def with_authorities(self, authorities: Iterable[str]) -> Config:
        return replace(self, authorities=check_authorities(authorities))

    def database_url(self, home: Path) -> str:
        """The configured URL, or the default: SQLite (aiosqlite) in `store.sqlite` under the home."""
        if self.database is not None:
            return self.database
        return "sqlite+aiosqlite:///" + str((home / "store.sqlite").resolve())


def check_org(text: str) -> str:
    org = text.strip()
    if not org:
        raise InputError("org must not be empty (the name of your organisation, e.g. 'OPTA')")
    if len(org) > _MAX_ORG_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in org):
        raise InputError(f"org must be one line of at most {_MAX_ORG_LENGTH} characters")
    return org


def check_jurisdiction(text: str) -> str:
    """An ISO 3166-1 alpha-2 code in upper case ('nl' is accepted as 'NL'); anything else is an error."""
    code = text.strip().upper()
    if code in COUNTRY_CODES:
        return code
    hint = country_hint(code) or "; e.g. NL, GB, US"
    raise InputError(f"jurisdiction {text!r} is not an ISO 3166-1 alpha-2 country code{hint}")


def check_category(text: str) -> str:
    category = text.strip().lower()
    if category not in CATEGORIES:
        choices = ", ".join(sorted(CATEGORIES))
        raise InputError(f"category {text!r} is not a member category; use one of: {choices}")
    return category


def check_network(text: str) -> str:
    if _NETWORK.fullmatch(text) is None:
        raise InputError(
            f"network id {text!r} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-' (e.g. ucenet)"
        )
    return text


def check_listen(text: str) -> str:
    match = _LISTEN.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group("port")) <= 65535:
        raise InputError(f"listen address {text!r} must be HOST:PORT with a port from 1 to 65535")
    return text.strip()


def check_authorities(ids: Iterable[str]) -> tuple[str, ...]:
    """Authority ids in their canonical text form, sorted, without duplicates; a typo is an error."""
    canonical = set()
    for text in ids:
        try:
            canonical.add(authority_id(parse_authority_id(text)))
        except InvalidAuthorityId as exc:
            raise InputError(f"authorities: {exc}") from None
    return tuple(sorted(canonical))


def _duration_ms(text: str) -> int:
    duration = parse_duration_ms(text)
    return duration if duration is not None else 0


def check_purge_interval(text: str) -> str:
    if not isinstance(text, str) or not parse_duration_ms(text):
        raise InputError(f"purge_interval {text!r} must be a duration such as 60s, 10m or 1h")
    return text.strip()


def check_retention(table: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """Rule 5: known kinds only, each "0" (keep) or a positive duration; the kept-for-ever ones dropped."""
    kept: list[tuple[str, str]] = []
    for kind, value in table.items():
        if kind not in SCHEMA_VERSIONS:
            raise InputError(f"retention: unknown kind {kind!r}; kinds: {', '.join(sorted(SCHEMA_VERSIONS))}")
        if not isinstance(value, str):
            raise InputError(f'retention.{kind} must be a duration in quotes, e.g. "365d" ("0": keep)')
        text = value.strip()
        if text == "0":
            continue
        if not parse_duration_ms(text):
            raise InputError(
                f'retention.{kind} {value!r} must be a duration such as 365d, 52w or 12h ("0": keep)'
            )
        kept.append((kind, text))
    return tuple(sorted(kept))


def check_database_url(text: str) -> str:
    url = text.strip()
    if not url.startswith(DATABASE_SCHEMES):
        # Never echo the URL: it may hold a password.
        raise InputError(
            "database URL must start with sqlite+aiosqlite:/// or postgresql+asyncpg:// "
            "(e.g. postgresql+asyncpg://lapnode@db.example:5432/lapnode)"
        )
    if url.startswith("sqlite+aiosqlite://") and not url.startswith("sqlite+aiosqlite:////"):
        # A relative path would be resolved against whatever directory each command runs in.
        raise InputError(
            "a SQLite database URL needs an absolute path: sqlite+aiosqlite:////srv/lapnode/store.sqlite"
        )
    return url


def load_config(path: Path) -> Config:
    """Read and validate config.toml; every problem is a ConfigError naming the file and the setting."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; run `lapnode init` first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return _config_from_document(path, document)


def _config_from_document(path: Path, document: dict[str, object]) -> Config:
    unknown = sorted(set(document) - set(_SETTINGS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(_SETTINGS)}")
    missing = sorted(_REQUIRED - set(document))
    if missing:
        raise ConfigError(f"{path}: setting {missing[0]!r} is missing")
    values: dict[str, str] = {}
    authorities = document.get("authorities", [])
    if not (isinstance(authorities, list) and all(isinstance(a, str) for a in authorities)):
        raise ConfigError(f"{path}: setting 'authorities' must be a list of authority ids in quotes")
    retention = document.get("retention", {})
    if not isinstance(retention, dict):
        raise ConfigError(
            f"{path}: 'retention' must be a table: [retention] then lines such as lead = \"365d\""
        )
    for name, value in document.items():
        if name in _NOT_PLAIN:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{path}: setting {name!r} must be a string in quotes")
        values[name] = value
    try:
        return Config.create(**values, authorities=authorities, retention=retention)
    except InputError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def render_config(config: Config) -> str:
    lines = [
        "# lapnode node configuration, written by `lapnode init`.",
        "# All settings are strings (authorities: a list of them). See docs/operator-guide.md.",
    ]
    for name in _SETTINGS:
        value = getattr(config, name)
        if name == "retention":
            continue  # a table: after every plain setting (TOML)
        if name == "purge_interval":
            lines.append(f"purge_interval = {json.dumps(value)}")
        elif name == "authorities":
            if not value:
                lines.append('# authorities = ["lapauth1..."]  (none: legacy mode, peers pinned by hand)')
            else:
                lines.append(f"authorities = {json.dumps(list(value))}")
        elif value is None:
            lines.append(f"# {name} = ...  (default: store.sqlite in this home)")
        else:
            lines.append(f"{name} = {json.dumps(value)}")
    lines.append("")
    lines.append('# How long this node keeps records of each kind ("0" or absent: for ever); docs/policy.md.')
    lines.append("[retention]")
    lines += [f"{kind} = {json.dumps(text)}" for kind, text in config.retention]
    return "\n".join(lines) + "\n"


def write_config(path: Path, config: Config) -> None:
    """Create config.toml (mode 0600); never overwrite an existing one."""
    data = render_config(config).encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def update_config(path: Path, config: Config) -> None:
    """Replace an existing config.toml atomically (mode 0600): a crash leaves the old file or the new."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; run `lapnode init` first")
    write_private_file(path, render_config(config).encode("utf-8"), overwrite=True)

"""The node home: one directory that holds everything a node is.

    <home>/config.toml     settings (lapnode.config), mode 0600
    <home>/identity.key    the node's private key (keys.keyfile), mode 0600
    <home>/store.sqlite    the record store, unless config.toml names another database
    <home>/policy.toml     the operator's local disclosure rules (optional; lapnode.policy.loader)

Rule 1: the home is chosen by `--home DIR`, else `LAPNODE_HOME`, else the per-user data directory.
Rule 2: a home is initialised exactly when config.toml exists; `initialise_home` writes it last, so a
failed `lapnode init` leaves no half-initialised home behind (it removes whatever it created).
Rule 3: the home directory is created with mode 0700.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import platformdirs

from keys.identity import Identity, NodeId
from keys.keyfile import NoEncryption, Passphrase, read_public_node_id, write_key_file
from lapnode.config import Config, load_config, write_config
from lapnode.errors import HomeError

ENV_HOME: Final = "LAPNODE_HOME"
CONFIG_NAME: Final = "config.toml"
KEY_NAME: Final = "identity.key"
POLICY_NAME: Final = "policy.toml"

# Opens (creating or upgrading the schema) and closes the store at a URL; injected so that this module
# does not depend on the store's internals and tests can fake it.
StoreProbe = Callable[[str, str], Awaitable[None]]


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("lapnode"))


def resolve_home(explicit: str | os.PathLike[str] | None) -> Path:
    """`--home` if given, else LAPNODE_HOME, else the per-user data directory."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_HOME)
    return Path(from_env).expanduser() if from_env else default_home()


@dataclass(frozen=True, slots=True)
class NodeHome:
    """An initialised home with its validated configuration."""

    path: Path
    config: Config

    @property
    def key_path(self) -> Path:
        return self.path / KEY_NAME

    @property
    def policy_path(self) -> Path:
        return self.path / POLICY_NAME

    @property
    def database_url(self) -> str:
        return self.config.database_url(self.path)

    def node_id(self) -> NodeId:
        """The node id recorded in identity.key; needs no passphrase."""
        return read_public_node_id(self.key_path)


def is_initialised(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file()


def open_home(path: Path) -> NodeHome:
    """Load an initialised home, or raise HomeError telling the operator to run `lapnode init`."""
    if not is_initialised(path):
        raise HomeError(f"no lapnode home at {path}; run `lapnode init` first (or pass --home DIR)")
    home = NodeHome(path=path, config=load_config(path / CONFIG_NAME))
    if not home.key_path.exists():
        raise HomeError(f"lapnode home {path} has no {KEY_NAME}; restore it from your backup")
    return home


def check_new_home(path: Path) -> None:
    """Refuse a path that is already a home, is a file, or is a directory with other things in it."""
    if is_initialised(path) or (path / KEY_NAME).exists():
        raise HomeError(f"{path} is already a lapnode home; refusing to initialise it again")
    if path.exists() and not path.is_dir():
        raise HomeError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise HomeError(f"{path} is not empty; choose a new or empty directory for the node home")


async def initialise_home(
    path: Path,
    config: Config,
    identity: Identity,
    protection: Passphrase | NoEncryption,
    probe_store: StoreProbe,
) -> NodeHome:
    """Create the home: directory, store, key file, then config.toml (the "initialised" marker)."""
    check_new_home(path)
    created_dir = not path.exists()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        home = NodeHome(path=path, config=config)
        await probe_store(home.database_url, config.network)
        write_key_file(home.key_path, identity, protection)
        write_config(path / CONFIG_NAME, config)
    except BaseException:
        _undo_partial_home(path, created_dir)
        raise
    return home


def _undo_partial_home(path: Path, created_dir: bool) -> None:
    # check_new_home guaranteed the directory was new or empty, so everything in it is ours to remove.
    if created_dir:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir() if path.is_dir() else ():
        with contextlib.suppress(OSError):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

"""Live reload: watch the config and every list it names, and build each new policy off the
event loop, so IT's edits apply within seconds and a broken edit changes nothing.

Plain Python (no mitmproxy): the addon hands in what to do with a good policy and with an error.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from watchfiles import watch

from addons.background import Background
from addons.config import Config, load_config
from addons.errors import ConfigError
from addons.policy import Policy

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 300  # editors write a file in several steps; well inside the 2 s promise
SUFFIXES = frozenset({".txt", ".yaml", ".yml"})
# While a reload builds a million-entry index beside the event loop, hand the GIL back every
# 0.5 ms instead of Python's 5 ms: a request then waits a few ms for it, not tens.
SWITCH_INTERVAL = 0.0005


def watched_files(config: Config) -> frozenset[Path]:
    """The config file and every list file it uses."""
    lists = [path for paths in config.categories.values() for path in paths]
    return frozenset(p.resolve() for p in (config.path, *config.allowlist, *lists))


def policy_version(config: Config) -> str:
    """A short content hash of the config and its lists: the version the reload records."""
    digest = hashlib.sha256()
    for path in sorted(watched_files(config)):
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"(unreadable)")
    return digest.hexdigest()[:12]


class PolicyWatcher(Background):
    """A thread that rebuilds the policy whenever one of its files changes.

    `on_load` gets every new good policy and its version; `on_error` gets the error of a bad
    edit, after which the caller's last good policy stays in force and the next good edit is
    picked up.
    """

    def __init__(
        self,
        config: Config,
        on_load: Callable[[Policy, str], None],
        on_error: Callable[[ConfigError], None],
    ) -> None:
        super().__init__("schoolgate-reload")
        self._path = config.path
        self._files = watched_files(config)
        self.version = policy_version(config)
        self._on_load = on_load
        self._on_error = on_error

    def _run(self) -> None:
        while not self._stop.is_set():
            files = self._files
            folders = {f.parent for f in files if f.parent.is_dir()}

            def relevant(_change: object, name: str, files=files, folders=folders) -> bool:
                # A list file the config names only after the edit lives in these folders too.
                path = Path(name).resolve()
                return path in files or (path.parent in folders and path.suffix in SUFFIXES)

            changes = watch(
                *sorted(map(str, folders)),
                watch_filter=relevant,
                debounce=DEBOUNCE_MS,
                stop_event=self._stop,
                recursive=False,
                raise_interrupt=False,
            )
            for _ in changes:
                self.reload()
                if self._files != files:
                    break  # the config now names other lists: watch those

    def reload(self) -> None:
        """Build the policy from the files as they are now, and hand it (or the error) on.

        A change that leaves every file's content as it was (a `touch`, an editor's backup)
        builds nothing.
        """
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            config = load_config(self._path)
            version = policy_version(config)
            if version == self.version:
                return
            policy = Policy(config)
        except ConfigError as e:
            self._on_error(e)
            return
        finally:
            sys.setswitchinterval(previous)
        self._files, self.version = watched_files(config), version
        self._on_load(policy, version)

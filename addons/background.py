"""One way to run a long-lived helper thread beside the proxy: started once, stopped on `done`."""

from __future__ import annotations

import threading


class Background:
    """A daemon thread running `_run` until `stop`; `_run` watches `self._stop`.

    Daemon, so a proxy killed without `done` does not hang on it; `stop` joins it, so a clean
    stop leaves no work half done.
    """

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError

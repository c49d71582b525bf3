"""free_port never hands out the same port twice, even when the kernel offers it again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from wfm_runtime import localservers


class _KernelOffering:
    """A stand-in for socket.socket whose bind(port 0) yields the ports given, in turn."""

    def __init__(self, ports: Iterator[int]) -> None:
        self._ports = ports

    def __call__(self, *args: Any) -> _KernelOffering:
        self._port = next(self._ports)
        return self

    def __enter__(self) -> _KernelOffering:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        assert address == ("127.0.0.1", 0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self._port)


def test_a_port_offered_again_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localservers, "_HANDED_OUT", set())
    offered = iter([41001, 41001, 41001, 41002])
    monkeypatch.setattr(localservers.socket, "socket", _KernelOffering(offered))
    assert [localservers.free_port(), localservers.free_port()] == [41001, 41002]

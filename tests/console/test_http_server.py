"""The web server's limits that need no server: the connection cap and the open-files limit."""

from __future__ import annotations

import resource
import subprocess
import sys

from console.http_server import FD_RESERVE, connection_cap


def test_the_connection_cap_stays_below_the_open_files_limit() -> None:
    assert connection_cap(4096, 65_536) == 4096
    assert connection_cap(4096, 1024) == 1024 - FD_RESERVE
    assert connection_cap(4096, 100) == 1  # never zero, however low the limit


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256 if hard == resource.RLIM_INFINITY else min(256, hard)
    script = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({low}, {hard}))\n"
        "from console.http_server import raise_fd_limit\n"
        "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    expected = 65_536 if hard == resource.RLIM_INFINITY else hard
    assert [int(n) for n in shown] == [expected, expected]

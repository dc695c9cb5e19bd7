"""The finalize command (``recording.finalize_command``, like Jibri's finalize script): run
with the complete file's path appended, killed after ``finalize_timeout_seconds``; its exit
status and the end of its output go into the sidecar.

It runs in its own process group (a timeout kills what it started too), with stdin closed,
stdout and stderr merged and read as they come (only the last ``OUTPUT_LIMIT`` bytes are
kept), and the server's environment less its own ``SFU_*`` settings (the admin token and the
webhook secret stay in the server), plus the recording's ``SFU_RECORDING_ID``,
``SFU_RECORDING_FILE``, ``SFU_RECORDING_SIDECAR`` and ``SFU_RECORDING_STATE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUTPUT_LIMIT = 8192  # bytes: the end of the output, where the errors are


def environment(recording: dict[str, Any], path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SFU_")}
    env.update(
        SFU_RECORDING_ID=str(recording.get("id")),
        SFU_RECORDING_FILE=str(path),
        SFU_RECORDING_SIDECAR=str(path.with_suffix(".json")),
        SFU_RECORDING_STATE=str(recording.get("state")),
    )
    return env


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run(
    command: Sequence[str], path: Path, timeout: float, recording: dict[str, Any]
) -> dict[str, Any]:
    """Run ``command + [path]``; returns what goes into the sidecar's ``finalize``."""
    started = time.monotonic()
    result: dict[str, Any] = {
        "exit_status": None,
        "timed_out": False,
        "output": "",
        "output_truncated": False,
        "duration": 0.0,
        "error": None,
    }
    tail = bytearray()
    total = 0

    async def read(stream: asyncio.StreamReader) -> None:
        nonlocal total
        while chunk := await stream.read(65536):
            total += len(chunk)
            tail.extend(chunk)
            del tail[:-OUTPUT_LIMIT]

    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=environment(recording, path),
        )
    except OSError as exc:
        # The program's name only: its arguments may hold credentials.
        result["error"] = f"cannot run {Path(command[0]).name}: {exc.strerror or exc}"
        return result
    assert process.stdout is not None
    try:
        await asyncio.wait_for(asyncio.gather(read(process.stdout), process.wait()), timeout)
    except TimeoutError:
        result["timed_out"] = True
        _kill(process)
        await process.wait()
    except BaseException:  # cancelled (server shutdown): leave nothing running
        _kill(process)
        raise
    finally:
        result["duration"] = round(time.monotonic() - started, 3)
        result["output"] = bytes(tail).decode("utf-8", "replace")
        result["output_truncated"] = total > len(tail)
    result["exit_status"] = process.returncode
    return result

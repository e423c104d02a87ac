"""Small file-system helpers shared by the writers of durable folders (rationale sets, checkpoints,
run folders).

    fsync_dir(folder)                           # a rename into `folder` survives a crash
    error = os_error_of(exc)                    # the OSError behind torch's or safetensors' wrapper
    write_failure(error, "the checkpoint", folder, "the last good checkpoint (step 50) is intact")
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

_OS_ERROR = re.compile(r"\(os error (\d+)\)")       # how safetensors (Rust) reports an OS error
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it survives a crash only once this returns)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def os_error_of(exc: BaseException) -> OSError | None:
    """The operating-system error behind `exc`: itself, one it was raised from or while handling
    (torch.save wraps a full disk in a RuntimeError whose context is the OSError), or the `(os error
    N)` that safetensors writes into its message; None when it is no OS error."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return current
        current = current.__cause__ or current.__context__
    if (m := _OS_ERROR.search(str(exc))) is not None:
        number = int(m.group(1))
        return OSError(number, os.strerror(number))
    return None


def write_failure(error: OSError, what: str, folder: Path, then: str = "") -> str:
    """One sentence for an OS error while writing `what` into `folder`: what happened, where, what to
    do, and (`then`) what was kept, e.g. 'no space left on device while writing the checkpoint to
    runs/x/checkpoint: free space and retry the run; the last good checkpoint (step 50) is intact'."""
    if error.errno is not None:
        reason = os.strerror(error.errno)
        reason = reason[:1].lower() + reason[1:]
    else:
        reason = str(error) or type(error).__name__
    if error.errno in NO_SPACE:
        fix = "free space"
    elif error.errno in NOT_WRITABLE:
        fix = "make it writable"
    else:
        fix = "check the disk"
    return f"{reason} while writing the {what} to {folder}: {fix} and retry the run" + (f"; {then}" if then else "")

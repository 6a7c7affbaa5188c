"""Replacing a directory in one step, so that a reader (or a crash) sees the old
one or the new one, never neither."""

import ctypes
import errno
import os
import shutil
import tempfile

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first, second):
    """Swaps two paths atomically (Linux's `renameat2(RENAME_EXCHANGE)`);
    False where the system or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), second)


def replace_directory(staging, target, overwrite):
    """Renames the directory `staging` (beside `target`) to `target`.

    An existing `target` is replaced only if `overwrite`: swapped with
    `staging` in one atomic step where the system can (Linux), so that a
    process killed at any point leaves the old directory or the new one
    under `target`; elsewhere the old one is moved aside, the new one
    renamed in, and the old one put back if that fails.

    Raises:
        FileExistsError: `target` exists and `overwrite` is false.
    """
    if not os.path.lexists(target):
        try:
            os.rename(staging, target)
            return
        except OSError:
            if not os.path.lexists(target):
                raise
            # Created meanwhile by someone else: never clobber it silently.
    if not overwrite:
        raise FileExistsError(f"{target!r} already exists (pass overwrite=True / --force to replace it)")
    if os.path.isdir(target) and _exchange(staging, target):
        shutil.rmtree(staging)  # now the old directory
        return
    aside = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".old", dir=os.path.dirname(target))
    old = os.path.join(aside, "previous")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    finally:
        shutil.rmtree(aside)

"""Operating-system isolation for processes that run generated code.

Four independent layers, so that losing one (a container without user namespaces, a
kernel without Landlock) leaves the others, and every report says which ones ran:

- **bwrap** (Debian package `bubblewrap`), at launch: a new network namespace (no
  interfaces but a dead loopback), a read-only view of `/`, a private `/tmp`, only the
  scratch or run folder writable, a new pid namespace, all capabilities dropped, killed
  with its parent. Fallback: `unshare -n` (network only).
- **rlimits**, in the process: CPU seconds, address space, file size, no core dumps.
- **Landlock** (Linux >= 5.13), in the process: writes only below the allowed folders;
  with ABI >= 4 also no TCP connect or bind.
- **seccomp** (`pyseccomp`), in the process: the system calls that generated code never
  needs fail with EPERM: sockets, exec, fork, and (for the probe) every write-open,
  unlink, rename and mkdir.

`isolated_command` wraps a command line (the probe worker, or a training process);
`isolate_current_process` applies the in-process layers to the caller, for a training
process that wants them after it has loaded its data and models.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import resource
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from synth_reward.sandbox.records import IsolationReport

_PYTHON_ROOTS = (sys.prefix, sys.base_prefix, sys.exec_prefix)
_BWRAP_LAYER = "bwrap (no network, read-only /, private /tmp, new pid namespace, no capabilities)"


# ---- launch-time layers --------------------------------------------------------------------


@functools.cache
def bwrap_problem() -> str | None:
    """None when bubblewrap can build a sandbox here, else why not (checked once per process)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap: not installed (Debian: apt-get install bubblewrap)"
    probe = [
        exe,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--cap-drop",
        "ALL",
        "--",
        "true",
    ]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap: cannot run ({exc})"
    if done.returncode != 0:
        first = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap: cannot create namespaces here ({first[0] if first else f'exit {done.returncode}'})"
    return None


@functools.cache
def unshare_problem() -> str | None:
    """None when `unshare -n` (or `unshare -rn` unprivileged) works, else why not."""
    exe = shutil.which("unshare")
    if exe is None:
        return "unshare: not installed (util-linux)"
    for flags in (["-n"], ["-r", "-n"]):
        try:
            if subprocess.run([exe, *flags, "true"], capture_output=True, timeout=20, check=False).returncode == 0:
                return None
        except (OSError, subprocess.TimeoutExpired):
            break
    return "unshare: cannot create a network namespace here"


def isolated_command(
    argv: Sequence[str], writable: Sequence[str | Path], *, network: bool = False, readable: Sequence[str | Path] = ()
) -> tuple[list[str], IsolationReport]:
    """`argv` wrapped so that it runs with no network and can write only to `writable`.

    With bwrap: `/` read-only, a fresh `/tmp`, `writable` folders bound read-write, the
    home folder hidden unless Python or this package lives there, a new pid namespace,
    no capabilities, killed when the parent dies. Without it: `unshare -n` for the
    network, nothing for the file system (the in-process Landlock and seccomp layers
    cover it). The report lists what is used and what is missing. Start it with
    `env=clean_env(...)` so that the caller's secrets stay out.

    For a training process: `cmd, report = isolated_command([sys.executable, "-m", ...],
    [run_dir])`, then `subprocess.Popen(cmd, env=clean_env(run_dir))`; inside, call
    `isolate_current_process(run_dir)` once models and data are loaded.
    """
    report = IsolationReport()
    problem = bwrap_problem()
    if problem is None:
        cmd = [
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--cap-drop",
            "ALL",
        ]
        if not network:
            cmd.append("--unshare-net")
        home = os.path.expanduser("~")
        package_root = str(Path(__file__).resolve().parents[2])
        if (
            home not in ("/", "")
            and os.path.isdir(home)
            and not any(_inside(p, home) for p in (*_PYTHON_ROOTS, package_root, *map(str, writable)))
        ):
            cmd += ["--tmpfs", home]  # API keys and tokens live in ~/.config, ~/.netrc, ...
        # The fresh /tmp hides whatever lived there: bring back, read-only, this package and
        # Python when they were installed under /tmp, and what the caller asks to read.
        shown = [p for p in (*_PYTHON_ROOTS, package_root) if _inside(p, "/tmp")] + [str(p) for p in readable]
        for path in dict.fromkeys(shown):
            cmd += ["--ro-bind", path, path]
        for folder in writable:
            cmd += ["--bind", str(folder), str(folder)]
        report.used.append(_BWRAP_LAYER)
        return [*cmd, "--", *argv], report
    report.missing.append(problem)
    if not network and unshare_problem() is None:
        flags = ["-n"] if os.geteuid() == 0 else ["-r", "-n"]
        report.used.append("unshare (no network)")
        return ["unshare", *flags, "--", *argv], report
    if not network:
        report.missing.append(unshare_problem() or "unshare: not used")
    return list(argv), report


def _inside(path: str, folder: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except OSError:
        return False


def clean_env(home: str | Path, **extra: str) -> dict[str, str]:
    """A minimal environment for an isolated process: nothing of the caller's (API keys stay out)."""
    package_root = str(Path(__file__).resolve().parents[2])
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONPATH": package_root,
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        **extra,
    }


# ---- in-process layers -----------------------------------------------------------------------


def apply_rlimits(*, cpu_seconds: float | None, memory_bytes: int | None, file_bytes: int | None) -> str:
    """Limit CPU seconds (added to what is used so far), address space (added to the current
    size), file size and core dumps. Returns the layer's description."""
    parts = []
    if cpu_seconds is not None:
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime + cpu_seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))
        parts.append(f"cpu {cpu_seconds:g} s")
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory_bytes,) * 2)
        parts.append(f"memory +{memory_bytes >> 20} MiB")
    if file_bytes is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        parts.append(f"file size {file_bytes >> 10} KiB")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return "rlimits (" + ", ".join([*parts, "no core dumps"]) + ")"


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


_LANDLOCK_CREATE, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT = 444, 445, 446  # same on every arch
_FS_WRITE = 1 << 1
_FS_WRITE_ALL = sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_ALL = (1 << 0) | (1 << 1)  # bind, connect TCP
_SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets, signals


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: unavailable)."""
    if platform.system() != "Linux":
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(_LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def apply_landlock(writable: Sequence[str | Path]) -> str:
    """Allow writes (create, delete, rename, truncate) only below `writable`; with ABI >= 4 deny
    TCP connect and bind, with ABI >= 6 abstract unix sockets and signals to outside processes.
    Reading and executing are unaffected. Raises OSError when Landlock is unavailable."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available in this kernel")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fs = _FS_WRITE_ALL | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(fs, _NET_ALL if abi >= 4 else 0, _SCOPE_ALL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = libc.syscall(_LANDLOCK_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in writable:
            is_dir = os.path.isdir(path)
            rule = _PathBeneath(fs if is_dir else fs & (_FS_WRITE | _FS_TRUNCATE), os.open(path, os.O_PATH))
            try:
                if libc.syscall(_LANDLOCK_ADD_RULE, fd, 1, ctypes.byref(rule), 0) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(rule.parent_fd)
        _no_new_privs(libc)
        if libc.syscall(_LANDLOCK_RESTRICT, fd, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    extras = (", no TCP" if abi >= 4 else "") + (", no abstract sockets or signals out" if abi >= 6 else "")
    return f"landlock ABI {abi} (writes only below {', '.join(map(str, writable)) or 'nothing'}{extras})"


def _no_new_privs(libc: ctypes.CDLL) -> None:
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def preload_seccomp() -> str | None:
    """Load libseccomp now (None) or say why not. Finding the library may run ldconfig or write a
    temporary file, which Landlock and the rlimits would block, so call this before them."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"seccomp: {exc} (pip install pyseccomp; needs libseccomp2)"
    return None


def apply_seccomp(*, strict: bool) -> str:
    """Install a seccomp filter; denied calls fail with EPERM instead of killing the process, so
    the error reaches the verdict. Both modes: no sockets other than unix ones, no ptrace,
    mount, raising limits or TIOCSTI. `strict` (the probe): also no exec, no new processes
    (threads stay allowed), no file writes at all, no unix sockets. Raises ImportError or
    OSError when seccomp is unavailable."""
    import pyseccomp as sc

    deny = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(defaction=sc.ALLOW)
    for call in (
        "ptrace",
        "process_vm_writev",
        "process_vm_readv",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "setrlimit",
        "prlimit64",
        "setns",
        "unshare",
        "kexec_load",
        "init_module",
        "finit_module",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
    ):
        _add(flt, deny, call)
    flt.add_rule(deny, "ioctl", sc.Arg(1, sc.EQ, 0x5412))  # TIOCSTI: type into the terminal
    if strict:
        for call in (
            "socket",
            "socketpair",
            "execve",
            "execveat",
            "fork",
            "vfork",
            "creat",
            "unlink",
            "unlinkat",
            "rename",
            "renameat",
            "renameat2",
            "mkdir",
            "mkdirat",
            "rmdir",
            "link",
            "linkat",
            "symlink",
            "symlinkat",
            "truncate",
            "chmod",
            "fchmod",
            "fchmodat",
            "chown",
            "fchown",
            "fchownat",
            "lchown",
            "mknod",
            "mknodat",
            "memfd_create",
            "kill",
            "io_uring_setup",
        ):
            _add(flt, deny, call)
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone, filtered below
        flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, 0x00010000, 0))  # no CLONE_THREAD: a process
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "openat2")
        for flag in (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND):
            flt.add_rule(deny, "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
            _add(flt, deny, "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
    else:
        for family in (2, 10, 16, 17):  # AF_INET, AF_INET6, AF_NETLINK, AF_PACKET
            flt.add_rule(deny, "socket", sc.Arg(0, sc.EQ, family))
    flt.load()
    if strict:
        return "seccomp (no sockets, exec, fork, file writes, ptrace, mount)"
    return "seccomp (no inet/netlink/packet sockets, ptrace, mount)"


def _add(flt: object, action: int, call: str, *args: object) -> None:
    """Add a rule, skipping system calls this architecture does not have (open, fork on arm64)."""
    try:
        flt.add_rule(action, call, *args)  # type: ignore[attr-defined]
    except (ValueError, RuntimeError, OSError):
        pass


def isolate_current_process(
    write_dir: str | Path,
    *,
    extra_writable: Sequence[str | Path] = (),
    memory_bytes: int | None = None,
    cpu_seconds: float | None = None,
) -> IsolationReport:
    """Confine the calling process (a training process) for the rest of its life.

    After this call it can write only below `write_dir`, `extra_writable` and the usual
    device files (/dev/null, /dev/shm, GPU devices), cannot open inet sockets or TCP
    connections, and cannot ptrace or mount; its children inherit all of it. Call it after
    loading models and data, before calling any generated code. Layers the machine lacks
    are listed in the report's `missing`; nothing is raised for them.
    """
    report = IsolationReport()
    seccomp_problem = preload_seccomp()
    devices = [
        p
        for p in (
            "/dev/null",
            "/dev/zero",
            "/dev/shm",
            "/dev/dri",
            "/dev/nvidiactl",
            "/dev/nvidia-uvm",
            "/dev/nvidia0",
            "/dev/nvidia-uvm-tools",
        )
        if os.path.exists(p)
    ]
    report.used.append(apply_rlimits(cpu_seconds=cpu_seconds, memory_bytes=memory_bytes, file_bytes=None))
    try:
        report.used.append(apply_landlock([str(write_dir), *map(str, extra_writable), *devices]))
    except OSError as exc:
        report.missing.append(f"landlock: {exc.strerror or exc}")
    if seccomp_problem:
        report.missing.append(seccomp_problem)
    else:
        try:
            report.used.append(apply_seccomp(strict=False))
        except (OSError, RuntimeError) as exc:
            report.missing.append(f"seccomp: {exc}")
    return report

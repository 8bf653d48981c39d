"""Acceptance: what the `python` tool's sandbox must block, through ToolSet + ToolContext.

Every attack ends in a clear observation (an error, a cut, or a refusal), the harness process
(this pytest process) survives it, and the sandbox answers again afterwards. A check that
depends on a safeguard the machine cannot provide (no network namespace, not root) verifies
the loud warning instead and is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from longhorizon.tools import ToolContext, ToolResult
from longhorizon.tools.python_tool import render
from longhorizon.tools.sandbox import CellResult, Isolation, PythonSandbox
from tests.test_python_tool import call, episode, run_calls


def sandbox(ctx: ToolContext) -> PythonSandbox:
    return ctx.state["python"]


def isolation(ctx: ToolContext) -> Isolation:
    found = sandbox(ctx).isolation
    assert found is not None
    return found


def outcomes(result: ToolResult) -> dict[str, str]:
    """`NAME BLOCKED|DONE ...` lines printed by a probe, as {name: verdict}."""
    found = {}
    for line in result.content.splitlines():
        name, _, rest = line.partition(" ")
        if rest.startswith(("BLOCKED", "DONE")):
            found[name] = rest.split()[0]
    return found


PROBE = """
def attempt(name, action):
    try:
        action()
        print(name, "DONE")
    except OSError as exc:
        print(name, "BLOCKED", type(exc).__name__)
"""


def processes_of(uid: int) -> list[int]:
    """Host pids running as `uid` (zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (entry / "status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                pids.append(int(entry.name))
    return pids


def wait_for_no_processes(uid: int, timeout_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# -- network ---------------------------------------------------------------------------------


def test_no_network_loopback_external_dns_or_abstract_unix(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    abstract = f"\0longhorizon-test-{uuid.uuid4().hex}"
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(abstract)
    unix_listener.listen()
    code = PROBE + (
        "import socket\n"
        f"attempt('loopback', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1))\n"
        "attempt('external', lambda: socket.create_connection(('1.1.1.1', 53), timeout=1))\n"
        "attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        ".sendto(b'x', ('8.8.8.8', 53)))\n"
        "attempt('dns', lambda: socket.getaddrinfo('example.com', 80))\n"
        "def unix():\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    s.settimeout(1)\n"
        f"    s.connect({abstract!r})\n"
        "attempt('abstract-unix', unix)\n"
    )
    ctx = episode(tmp_path)

    async def main() -> tuple[ToolResult, Isolation, ToolResult]:
        try:
            result = await call(ctx, code)
            return result, isolation(ctx), await call(ctx, "print('alive')")
        finally:
            await ctx.aclose()

    try:
        result, found, after = asyncio.run(main())
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the host's loopback listener
    finally:
        listener.close()
        unix_listener.close()
    if not found.network:
        assert "network isolation is OFF" in result.content
        pytest.skip(f"no network namespace on this machine: {found.problems}")
    assert outcomes(result) == dict.fromkeys(
        ["loopback", "external", "udp", "dns", "abstract-unix"], "BLOCKED"
    ), result.content
    assert "network isolation is OFF" not in result.content
    assert after.content == "alive"


# -- filesystem ------------------------------------------------------------------------------


def test_no_writes_outside_the_working_directory(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:12]
    targets = {
        "etc": f"/etc/lh-probe-{tag}",
        "home": str(Path.home() / f"lh-probe-{tag}"),  # the harness user's home
        "tmp": f"/tmp/lh-probe-{tag}",
        "var-tmp": f"/var/tmp/lh-probe-{tag}",
        "root-dir": f"/lh-probe-{tag}",
        "host-path": str(tmp_path / f"lh-probe-{tag}"),  # next to the episode, outside it
    }
    code = PROBE + "import os\n"
    for name, path in targets.items():
        code += f"attempt({name!r}, lambda: open({path!r}, 'w').write('x'))\n"
    code += (
        f"os.symlink('/etc/lh-link-{tag}', 'escape')\n"  # a link out of the workdir
        "attempt('symlink', lambda: open('escape', 'w').write('x'))\n"
        f"attempt('mkdir', lambda: os.mkdir('/usr/lh-probe-{tag}'))\n"
        "attempt('chmod', lambda: os.chmod('/etc/passwd', 0o666))\n"
        # the private /dev/shm is writable (multiprocessing needs it) but not the host's
        f"attempt('shm', lambda: open('/dev/shm/lh-probe-{tag}', 'w').write('x'))\n"
        "attempt('workdir', lambda: open('inside.txt', 'w').write('x'))\n"
        "print('cwd', os.getcwd())\n"
    )
    ctx = episode(tmp_path)
    results = run_calls(ctx, code)
    result = results[0]
    found = isolation_after(ctx, result)
    verdicts = outcomes(result)
    for path in [*targets.values(), f"/etc/lh-link-{tag}", f"/usr/lh-probe-{tag}"]:
        assert not os.path.exists(path), path
    assert not os.path.exists(f"/dev/shm/lh-probe-{tag}")
    assert oct(os.stat("/etc/passwd").st_mode & 0o777) == "0o644"
    assert (ctx.workdir / "python" / "inside.txt").read_text() == "x"
    assert verdicts["workdir"] == "DONE"
    if not found.filesystem:
        assert "filesystem isolation is OFF" in result.content
        pytest.skip(f"no private mount namespace here: {found.problems}")
    blocked = [*targets, "symlink", "mkdir", "chmod"]
    assert {name: verdicts[name] for name in blocked} == dict.fromkeys(blocked, "BLOCKED")
    assert "cwd /tmp/work" in result.content


def isolation_after(ctx: ToolContext, result: ToolResult) -> Isolation:
    """The isolation report, kept by the (closed) sandbox after its last start."""
    assert result.error is None or "Traceback" in result.content, result.content
    return isolation(ctx)


def test_file_size_limit(tmp_path: Path) -> None:
    ctx = episode(tmp_path, file_size_mb=2)
    results = run_calls(ctx, "open('big', 'wb').write(b'0' * (8 * 2**20))", "print('alive')")
    assert results[0].error is not None and "File too large" in results[0].error
    assert (ctx.workdir / "python" / "big").stat().st_size <= 2 * 2**20
    assert results[1].content == "alive"


def test_secrets_outside_are_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"TOKEN-{uuid.uuid4().hex}"
    secret = tmp_path.parent / f"secret-{uuid.uuid4().hex}.txt"
    secret.write_text(token)
    secret.chmod(0o600)
    monkeypatch.setenv("LH_SECRET_TOKEN", token)  # the harness's environment is not inherited
    harness = os.getpid()
    code = PROBE + (
        "import os\n"
        f"attempt('secret', lambda: print(open({str(secret)!r}).read()))\n"
        "attempt('shadow', lambda: print(open('/etc/shadow').read()))\n"
        f"attempt('harness-environ', lambda: print(open('/proc/{harness}/environ').read()))\n"
        "attempt('setuid', lambda: os.setuid(0))\n"
        "print('env', os.environ.get('LH_SECRET_TOKEN'))\n"
    )
    try:
        ctx = episode(tmp_path)
        [result] = run_calls(ctx, code)
    finally:
        secret.unlink()
    assert token not in result.content
    assert "env None" in result.content
    found = isolation(ctx)
    if found.uid is None:
        assert "runs as the harness's own user" in result.content
        pytest.skip("not root: the sandbox keeps the harness's uid, which may read its files")
    names = ["secret", "shadow", "harness-environ", "setuid"]
    assert outcomes(result) == dict.fromkeys(names, "BLOCKED"), result.content


def test_identity_has_no_privileges(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
        "print(status['CapEff'].strip(), status['NoNewPrivs'].strip())\n"
        "print(sorted(os.environ))"
    )
    ctx = episode(tmp_path)
    [result] = run_calls(ctx, code)
    ids, caps, env = result.content.splitlines()
    found = isolation(ctx)
    assert caps.split() == ["0000000000000000", "1"]  # no capabilities, no_new_privs
    assert set(eval(env)) <= {  # a scrubbed environment
        "PATH", "HOME", "TMPDIR", "PWD", "LANG", "LC_ALL", "LC_CTYPE",
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_ARENA_MAX",
    }  # fmt: skip
    if found.uid is not None:
        assert ids == f"{found.uid} {found.uid} {found.uid} []"
        assert found.uid != 0 and found.uid != os.getuid()


# -- processes -------------------------------------------------------------------------------


def test_fork_bombs_are_contained(tmp_path: Path) -> None:
    ctx = episode(tmp_path, max_processes=24, timeout_s=3.0)
    python_bomb = "import os\nwhile True:\n    os.fork()"
    shell_bomb = "import os\nos.system('bomb() { bomb | bomb & }; bomb')\nprint('returned')"

    async def main() -> tuple[list[ToolResult], list[int]]:
        try:
            results = [await call(ctx, code) for code in (python_bomb, shell_bomb)]
            # nothing the bombs started outlives the call: only the interpreter is left
            uid = isolation(ctx).uid
            left = processes_of(uid) if uid is not None else []
            results.append(await call(ctx, "print('alive')"))
            return results, left
        finally:
            await ctx.aclose()

    start = time.monotonic()
    results, left = asyncio.run(main())
    assert results[0].error is not None  # BlockingIOError, or the wall timeout
    assert "BlockingIOError" in results[0].error or "time limit" in results[0].error
    assert "were killed: processes do not outlive a call" in results[1].content
    assert results[2].content.endswith("alive")
    assert len(left) <= 1, left
    assert time.monotonic() - start < 15
    uid = isolation(ctx).uid
    if uid is not None:
        assert wait_for_no_processes(uid) == []


def test_memory_bomb_gets_a_memory_error(tmp_path: Path) -> None:
    ctx = episode(tmp_path, memory_mb=256)
    hog = "hog = []\nwhile True:\n    hog.append(bytearray(16 * 2**20))"
    child = (
        "import subprocess, sys\n"  # the limit is inherited by the processes it starts
        "code = 'bytearray(2**30)'\n"
        "print(subprocess.run([sys.executable, '-c', code], capture_output=True).returncode)"
    )
    results = run_calls(ctx, hog, "del hog\nprint('alive')", "x = bytearray(8 * 2**30)", child)
    assert results[0].error == "MemoryError"
    assert results[1].content == "alive"  # the interpreter survived with its state
    assert results[2].error == "MemoryError"
    assert results[3].content == "1"


def test_infinite_loop_is_killed_by_the_wall_timeout(tmp_path: Path) -> None:
    ctx = episode(tmp_path, timeout_s=1.5)
    stubborn = (
        "import signal\n"
        "for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass"
    )
    results = run_calls(ctx, stubborn, "print('alive')")
    assert results[0].error is not None and "time limit" in results[0].error
    assert results[0].duration_s < 4
    assert results[1].content.endswith("alive")


def test_cpu_time_limit_ends_a_busy_interpreter(tmp_path: Path) -> None:
    ctx = episode(tmp_path, cpu_s=1, timeout_s=6.0)
    results = run_calls(ctx, "while True:\n    pass", "print('alive')")
    assert results[0].error is not None and "CPU-time budget of 1 s" in results[0].error
    assert results[0].duration_s < 5
    assert results[1].content.endswith("alive")


def test_processes_do_not_outlive_a_call(tmp_path: Path) -> None:
    ctx = episode(tmp_path, timeout_s=1.5)
    daemon = (
        "import subprocess\n"
        "subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
        "subprocess.Popen(['sleep', '60'], start_new_session=True)"
    )
    stuck = daemon + "\nwhile True:\n    pass"

    async def main() -> tuple[list[ToolResult], list[int], int | None]:
        try:
            results = [await call(ctx, daemon)]
            uid = isolation(ctx).uid
            after_call = processes_of(uid) if uid is not None else []
            results.append(await call(ctx, stuck))  # a timeout kills the daemons too
            return results, after_call, uid
        finally:
            await ctx.aclose()

    results, after_call, uid = asyncio.run(main())
    assert results[0].ok and "time limit" in (results[1].error or "")
    assert "2 process(es) the code started were still running" in results[0].content
    if uid is None:
        pytest.skip("no dedicated sandbox uid to find its processes by")
    assert len(after_call) == 1  # the interpreter alone
    assert wait_for_no_processes(uid) == []


def test_harness_and_its_processes_cannot_be_killed(tmp_path: Path) -> None:
    sibling = subprocess.Popen(["sleep", "30"])  # another process of the harness's user
    harness = os.getpid()
    code = PROBE + (
        "import os, signal\n"
        "attempt('parent', lambda: os.kill(os.getppid(), signal.SIGKILL))\n"
        f"attempt('harness', lambda: os.kill({harness}, signal.SIGKILL))\n"
        f"attempt('sibling', lambda: os.kill({sibling.pid}, signal.SIGKILL))\n"
        "attempt('everyone', lambda: os.kill(-1, signal.SIGKILL))\n"
        "attempt('group', lambda: os.killpg(0, signal.SIGKILL))\n"
        "print('survived')"
    )
    try:
        results = run_calls(episode(tmp_path), code, "print('alive')")
        assert sibling.poll() is None  # still running
    finally:
        sibling.kill()
        sibling.wait()
    assert os.getpid() == harness  # we are still here to assert it
    assert results[1].content.endswith("alive")
    verdicts = outcomes(results[0])
    assert verdicts.get("harness") == "BLOCKED" and verdicts.get("sibling") == "BLOCKED"


# -- output ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "print('x' * 50_000_000)",
        "for i in range(100_000):\n    print(i)",
        "import os\nos.system('head -c 5000000 /dev/zero | tr \"\\\\0\" y')",
        "import sys\nsys.stderr.write('e' * 3_000_000)",
    ],
    ids=["one-huge-print", "print-loop", "subprocess", "stderr"],
)
def test_huge_output_is_cut_to_the_cap(tmp_path: Path, code: str) -> None:
    ctx = episode(tmp_path, max_output_bytes=2000)
    results = run_calls(ctx, code, "print('alive')")
    result = results[0]
    assert result.truncated
    assert "more bytes of output were cut" in result.content
    assert len(result.content) < 5000
    assert results[1].content == "alive"


# -- warnings --------------------------------------------------------------------------------


def test_missing_network_isolation_is_announced_loudly() -> None:
    off = Isolation(
        network=False,
        filesystem=True,
        pid=True,
        uid=1234,
        no_new_privs=True,
        problems=("network namespace: Operation not permitted",),
    )
    result = render(CellResult("ok", stdout="hi\n", warnings=off.warnings()))
    first = result.content.splitlines()[0]
    assert first.startswith("WARNING: network isolation is OFF")
    assert "Operation not permitted" in first
    assert result.content.endswith("hi")
    assert "OPEN" in off.summary()

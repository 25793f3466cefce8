"""Fork server for the Python sandbox: one long-lived interpreter per pool slot.

Reads one JSON request per line on stdin, forks a fresh child per request (so a run costs a fork,
not an interpreter start), enforces the limits, and writes one JSON result per line on stdout.
Runs inside bubblewrap (or unshare-init.py's equivalent) under a dropped uid; the Node side owns
the policy, this file only enforces it. Plain standard library, no third-party imports.
"""
import base64
import collections
import ctypes
import gc
import io
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import sys
import time
import traceback

MEMORY_EXIT = 213
PR_SET_DUMPABLE = 4

# --pidns: we are alone in a private pid namespace, so kill(-1) reaches only the run's leftovers.
IN_PIDNS = '--pidns' in sys.argv
WORK_ROOT = sys.argv[sys.argv.index('--work-root') + 1] if '--work-root' in sys.argv else '/tmp'

# Warm imports: paid once here, inherited by every forked child.
for _name in os.environ.get('RETOOL_SANDBOX_PRELOAD', '').split(','):
    if _name:
        try:
            __import__(_name)
        except Exception:
            pass

# Preloaded objects never change again: keep the collector off their pages so forks share them.
gc.freeze()

# Modules imported into the server the first time a run's code imports them: every later run
# gets them for a fork, and servers whose runs never use them stay small (forks are cheaper).
LAZY = {name: re.compile(r'^\s*(?:import|from)\s+%s\b' % re.escape(name), re.M)
        for name in os.environ.get('RETOOL_SANDBOX_LAZY', '').split(',') if name}


def warm_lazy_imports(code):
    for name in [n for n, pattern in LAZY.items() if pattern.search(code)]:
        del LAZY[name]
        try:
            __import__(name)
        except Exception:
            pass
        gc.freeze()

# Non-dumpable: code running under the same uid can neither ptrace this process nor open its
# /proc/<pid>/fd or mem, so it cannot tamper with the server that later runs other code.
try:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
except Exception:
    pass

# The run's stdio, made once: a child dup2()s its pipes onto fds 0-2 and uses these as they are.
# Unbuffered output, so what is written before os._exit() or a crash is still seen.
CHILD_STDIO = (
    io.TextIOWrapper(open(0, 'rb', closefd=False), encoding='utf-8', errors='replace'),
    io.TextIOWrapper(open(1, 'wb', buffering=0, closefd=False), encoding='utf-8', errors='backslashreplace', write_through=True),
    io.TextIOWrapper(open(2, 'wb', buffering=0, closefd=False), encoding='utf-8', errors='backslashreplace', write_through=True),
)
PROTOCOL_OUT = os.fdopen(os.dup(1), 'w', buffering=1)
PROTOCOL_IN = os.fdopen(os.dup(0), 'rb')
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 0)
os.dup2(devnull, 1)


WAKE_R, WAKE_W = os.pipe()
os.set_blocking(WAKE_R, False)
os.set_blocking(WAKE_W, False)
signal.set_wakeup_fd(WAKE_W, warn_on_full_buffer=False)
signal.signal(signal.SIGCHLD, lambda *_: None)


def drain_wakeups():
    try:
        while os.read(WAKE_R, 4096):
            pass
    except BlockingIOError:
        pass


def set_limits(req):
    def cap(res, value):
        if value is None:
            return
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    cpu = req.get('cpuSeconds')
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = req.get('memoryMb')
    if mem:
        cap(resource.RLIMIT_AS, mem * 1024 * 1024)
    cap(resource.RLIMIT_NPROC, req.get('maxProcesses'))
    cap(resource.RLIMIT_FSIZE, req.get('maxFileBytes'))
    cap(resource.RLIMIT_NOFILE, req.get('maxOpenFiles', 256))
    cap(resource.RLIMIT_CORE, 0)


# Past this many frames a traceback shows its ends only: formatting a million frames (deep
# recursion under a raised limit) takes seconds, longer than many runs' time limit under load.
TRACEBACK_EDGE = 20


def print_traceback(e, tb):
    # One walk that keeps only the ends: a list of every frame may not fit in what memory is left.
    first, last, count, walk = [], collections.deque(maxlen=TRACEBACK_EDGE), 0, tb
    while walk is not None:
        if count < TRACEBACK_EDGE:
            first.append((walk.tb_frame, walk.tb_lineno))
        else:
            last.append((walk.tb_frame, walk.tb_lineno))
        count += 1
        walk = walk.tb_next
    if count <= 4 * TRACEBACK_EDGE:
        traceback.print_exception(type(e), e, tb)
        return
    lines = traceback.StackSummary.extract(iter(first + list(last))).format()
    omitted = ['  [... %d frames omitted ...]\n' % (count - 2 * TRACEBACK_EDGE)]
    text = ''.join(['Traceback (most recent call last):\n'] + lines[:TRACEBACK_EDGE] + omitted + lines[TRACEBACK_EDGE:] + traceback.format_exception_only(type(e), e))
    sys.stderr.write(text)


def report(e):
    """Prints the run's traceback to its stderr. Printing can itself fail when memory is spent (an
    exception a million frames deep): then drop the frames and print the exception's line alone,
    rather than let the failure escape and end the run as a bare exit 120. Returns True when the
    traceback could not be printed for want of memory."""
    # CPython 3.11 reports a frame it could not allocate (deep recursion at the memory limit) as
    # this SystemError; the model should read what happened.
    frames_exhausted = isinstance(e, SystemError) and str(e) == 'error return without exception set'
    try:
        if frames_exhausted:
            e = MemoryError('out of memory: the recursion went too deep for the memory limit').with_traceback(e.__traceback__)
        # Drop our own exec frame: the model should see only its code in the traceback.
        print_traceback(e, e.__traceback__.tb_next if e.__traceback__ else None)
        return frames_exhausted
    except BaseException as failure:
        out_of_memory = isinstance(failure, MemoryError)
    e.__traceback__ = None
    try:
        text = str(e)
        os.write(2, ('%s: %s\n' % (type(e).__name__, text) if text else '%s\n' % type(e).__name__).encode('utf-8', 'replace'))
    except BaseException:
        pass
    return out_of_memory


def child(req, compiled, workdir, stdin_fd, out_w, err_w, done_w):
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    os.dup2(stdin_fd, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(done_w, 3)
    os.closerange(4, 65536)
    os.chdir(workdir)
    os.environ['HOME'] = workdir
    os.environ['TMPDIR'] = workdir
    set_limits(req)
    sys.stdin, sys.stdout, sys.stderr = CHILD_STDIO
    sys.argv = ['<code>']
    # Seeded by the request, so the same code gives the same output when a run is resumed.
    seed = int(req['seed'])
    random.seed(seed)
    if 'numpy.random' in sys.modules:
        sys.modules['numpy.random'].seed(seed % (2 ** 32))
    code = 0
    try:
        if isinstance(compiled, BaseException):
            raise compiled
        exec(compiled, {'__name__': '__main__', '__builtins__': __builtins__})
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except MemoryError as e:
        code = MEMORY_EXIT
        report(e)
    except BaseException as e:
        # No memory left even to print its traceback (CPython 3.11 reports a failed frame
        # allocation in deep recursion as SystemError): the run hit its memory limit.
        code = MEMORY_EXIT if report(e) else 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    # Close the output first, then report: the server answers without waiting for this
    # process's memory to be torn down, which is most of a fork's cost. Code can write to fd 3
    # itself, as it can choose its exit code; either way it is killed at cleanup.
    for fd in (0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        os.write(3, b'%d' % (code & 0xFF))
    except OSError:
        pass
    os._exit(code & 0xFF)


def alive_others():
    """Processes in this namespace other than init and us, zombies excluded."""
    me = os.getpid()
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) in (1, me):
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if state != 'Z':
            found.append(int(name))
    return found


def reap_all():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                return
        except ChildProcessError:
            return


def kill_leftovers(pid, status, wait=True):
    """Kills what the run left behind; returns the run's wait status (reaping it if `wait`).

    A child that reported its exit code is already exiting: with wait=False it is not waited
    for, so tearing down its memory overlaps with the next run; a later sweep reaps it.
    """
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if status is None and wait:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
    if IN_PIDNS:
        # Daemons that setsid'd away from the group: everything in this namespace but us and init.
        for _ in range(500):
            reap_all()
            if not [p for p in alive_others() if p != pid]:
                break
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.001)
    reap_all()
    return status


def clear_work_root():
    for name in os.listdir(WORK_ROOT):
        path = os.path.join(WORK_ROOT, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


EXITING = []  # children that reported and were left to finish exiting in parallel


def run(req, n):
    """Runs one request; returns its result and the cleanup to do after the result is sent."""
    # The previous child has had the time since our answer to tear down its memory; make sure it
    # is gone before the next code runs, so a run never sees another run's process.
    while EXITING:
        try:
            os.waitpid(EXITING.pop(), 0)
        except ChildProcessError:
            pass
    workdir = os.path.join(WORK_ROOT, 'run-%d' % n)
    os.mkdir(workdir, 0o700)
    stdin_fd = os.memfd_create('stdin')
    os.write(stdin_fd, req.get('stdin', '').encode('utf-8'))
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    if LAZY:
        warm_lazy_imports(req['code'])
    # Compiled here, not in the child: a fresh child pays copy-on-write faults for every page
    # the compiler touches, which cost more than running a short snippet.
    try:
        compiled = compile(req['code'], '<code>', 'exec')
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
        compiled = e
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    done_r, done_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            child(req, compiled, workdir, stdin_fd, out_w, err_w, done_w)
        finally:
            os._exit(120)
    for fd in (out_w, err_w, done_w, stdin_fd):
        os.close(fd)
    # Every limit comes with the request (SandboxLimitsSchema holds the defaults).
    cap = req['maxOutputBytes']
    deadline = started + req['timeoutMs'] / 1000.0
    bufs = {out_r: bytearray(), err_r: bytearray()}
    open_fds = [out_r, err_r]
    watch = [done_r, WAKE_R]
    drain_wakeups()
    truncated = False
    reason = None
    status = None      # wait status, once reaped
    reported = None    # exit code the child wrapper reported before exiting
    finished_at = None
    while True:
        if status is None:
            reaped, wait_status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                status = wait_status
        now = time.monotonic()
        if finished_at is None and (status is not None or reported is not None):
            finished_at = now
        if finished_at is not None and (not open_fds or now - finished_at > 0.05):
            break  # done; a leftover process may hold the pipes open, so drain briefly and stop
        if finished_at is None and now >= deadline:
            reason = 'timeout'
            break
        wait = 0.01 if finished_at is not None else min(0.05, max(0.0, deadline - now))
        # SIGCHLD writes to WAKE_R, so a child's exit ends the wait at once.
        ready = select.select(open_fds + watch, [], [], wait)[0]
        if WAKE_R in ready:
            drain_wakeups()
        if done_r in ready:
            data = os.read(done_r, 64)
            watch.remove(done_r)
            try:
                reported = int(data)
            except ValueError:
                pass
        for fd in ready:
            if fd not in bufs:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
                continue
            buf = bufs[fd]
            room = cap - len(buf)
            if room > 0:
                buf += chunk[:room]
            if len(chunk) > room:
                truncated = True
                reason = reason or 'output'
        if reason == 'output':
            break
    if reason is not None:
        status = kill_leftovers(pid, status)
    duration_ms = (time.monotonic() - started) * 1000.0
    if status is not None:
        exit_code = os.waitstatus_to_exitcode(status)
    else:
        exit_code = reported
    sig = -exit_code if exit_code < 0 else None
    if reason == 'timeout':
        outcome = 'timeout'
    elif reason == 'output':
        outcome = 'killed'
    elif sig == signal.SIGXCPU:
        outcome = 'timeout'
        reason = 'cpu'
    elif exit_code == MEMORY_EXIT:
        outcome = 'memory'
    elif sig is not None:
        outcome = 'killed'
    elif exit_code == 0:
        outcome = 'ok'
    else:
        outcome = 'error'
    result = {
        'status': outcome,
        'reason': reason,
        'exitCode': exit_code if sig is None else None,
        'signal': signal.Signals(sig).name if sig else None,
        'stdout': base64.b64encode(bytes(bufs[out_r])).decode('ascii'),
        'stderr': base64.b64encode(bytes(bufs[err_r])).decode('ascii'),
        'durationMs': round(duration_ms, 3),
        'truncated': truncated,
    }

    def cleanup():
        kill_leftovers(pid, status, wait=False)
        if status is None:
            EXITING.append(pid)
        for fd in (out_r, err_r, done_r):
            os.close(fd)
        clear_work_root()

    return result, cleanup


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.makedirs(WORK_ROOT, exist_ok=True)
    PROTOCOL_OUT.write(json.dumps({'ready': True, 'pid': os.getpid(), 'uid': os.getuid()}) + '\n')
    n = 0
    for line in PROTOCOL_IN:
        if not line.strip():
            continue
        n += 1
        req = json.loads(line)
        cleanup = clear_work_root
        try:
            result, cleanup = run(req, n)
        except Exception:  # a bug here, not in the user's code
            result = {'status': 'sandbox_error', 'reason': 'server', 'exitCode': None, 'signal': None,
                      'stdout': '', 'stderr': base64.b64encode(traceback.format_exc().encode()).decode('ascii'),
                      'durationMs': 0, 'truncated': False}
        result['id'] = req.get('id')
        PROTOCOL_OUT.write(json.dumps(result) + '\n')
        # After answering, so the caller is not kept waiting; the next request waits for it.
        cleanup()


if __name__ == '__main__':
    main()

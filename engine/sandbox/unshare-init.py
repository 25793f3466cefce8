"""The sandbox without bubblewrap: runs as root inside the namespaces that util-linux `unshare`
made (pid, net, mount, ipc, uts; a user namespace too when the host user is not root), builds
the same filesystem bubblewrap would (a read-only root with /usr, /etc and the bound paths, a
private /tmp, a minimal /dev, a fresh /proc), stays as the namespace's init, and runs the
program as an unprivileged uid with no capabilities and no new privileges.

Why Python and not a shell script: after pivot_root no binary can be started until /usr is back,
and the mounts need no tool when the interpreter is already loaded. Standard library only.

Usage: python -I unshare-init.py SPEC_JSON
SPEC: {"binds": [[src, dest], ...], "files": [[fd, dest], ...], "tmpBytes": n, "uid": n | null,
       "env": {...}, "argv": [...]}. uid null means "in a user namespace of the host user's": the
program then runs as uid 65534 of a nested user namespace.
"""
import ctypes
import json
import os
import shutil
import signal
import socket
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_DUMPABLE = 4
NOBODY = 65534

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def die(message):
    sys.stderr.write('sandbox init: %s\n' % message)
    os._exit(125)


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None
    if libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        die('mount %s on %s: %s' % (src, target, os.strerror(err)))


def locked_flags(path):
    """Flags a read-only remount must keep: a user namespace may not clear what the host set."""
    f = os.statvfs(path).f_flag
    return f & (MS_NOSUID | MS_NODEV | MS_NOEXEC)


def bind_read_only(src, dest):
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.path.exists(dest):
            open(dest, 'w').close()
    mount(src, dest, None, MS_BIND | MS_REC)
    mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(src))


def pivot_into_fresh_root():
    """A tmpfs root with the old one at /oldroot. Mounted on /tmp, so that after the pivot the
    host's /tmp is visible again under /oldroot/tmp (a checkout there can still be bound)."""
    mount('none', '/', None, MS_REC | MS_PRIVATE)
    mount('retool-sandbox', '/tmp', 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0755,size=4m')
    os.mkdir('/tmp/oldroot')
    tool = shutil.which('pivot_root', path='/usr/sbin:/sbin:/usr/bin:/bin')
    if tool is None:
        die('pivot_root (util-linux) not found')
    pid = os.fork()
    if pid == 0:
        os.chdir('/tmp')
        os.execv(tool, [tool, '.', 'oldroot'])
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        die('pivot_root failed')
    # pivot_root moved this process's root and cwd along with the mount.
    os.chdir('/')


def build_root(spec):
    old = '/oldroot'
    for top in ('usr', 'etc'):
        bind_read_only(old + '/' + top, '/' + top)
    for top in ('bin', 'lib', 'lib32', 'lib64', 'sbin'):
        host = old + '/' + top
        if os.path.islink(host):
            os.symlink(os.readlink(host), '/' + top)
        elif os.path.isdir(host):
            bind_read_only(host, '/' + top)
    for src, dest in spec['binds']:
        if dest.startswith('/usr/') and src == dest:
            continue
        bind_read_only(old + src, dest)
    os.mkdir('/dev', 0o755)
    mount('retool-dev', '/dev', 'tmpfs', MS_NOSUID | MS_NOEXEC, 'mode=0755,size=64k')
    for name in ('null', 'zero', 'full', 'random', 'urandom'):
        if os.path.exists(old + '/dev/' + name):
            bind_read_only_device(old + '/dev/' + name, '/dev/' + name)
    for name, target in (('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'), ('stdout', '/proc/self/fd/1'), ('stderr', '/proc/self/fd/2')):
        os.symlink(target, '/dev/' + name)
    os.mkdir('/dev/shm')
    # Read-only /dev (its tmpfs belongs to the host user in a user namespace); /dev/shm apart, as
    # multiprocessing's semaphores need it.
    mount(None, '/dev', None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    mount('retool-shm', '/dev/shm', 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777,size=%d' % (16 << 20))
    os.mkdir('/proc', 0o555)
    mount('proc', '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir('/tmp', 0o1777)
    mount('retool-tmp', '/tmp', 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777,size=%d' % spec['tmpBytes'])
    for fd, dest in spec.get('files', []):
        with os.fdopen(fd, 'rb') as source, open(dest, 'wb') as target:
            shutil.copyfileobj(source, target)
        os.chmod(dest, 0o644)
    if libc.umount2(old.encode(), MNT_DETACH) != 0:
        die('cannot detach the old root: %s' % os.strerror(ctypes.get_errno()))
    os.rmdir(old)
    mount(None, '/', None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def bind_read_only_device(src, dest):
    open(dest, 'w').close()
    mount(src, dest, None, MS_BIND)
    mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC | locked_flags(src))


def unprivileged(spec):
    """The command that runs the program unprivileged: as host root, setpriv to the given uid;
    as a host user (already in a user namespace of its own), a nested user namespace where the
    program is uid 65534 (no capabilities after exec), then no new privileges."""
    if spec['uid'] is not None:
        uid = str(spec['uid'])
        return ['/usr/bin/setpriv', '--reuid=' + uid, '--regid=' + uid, '--clear-groups', '--no-new-privs',
                '--bounding-set=-all', '--inh-caps=-all', '--'] + spec['argv']
    nested = ['/usr/bin/unshare', '--user', '--map-user=%d' % NOBODY, '--map-group=%d' % NOBODY, '--']
    return nested + ['/usr/bin/setpriv', '--no-new-privs', '--'] + spec['argv']


def main():
    spec = json.loads(sys.argv[1])
    pivot_into_fresh_root()
    build_root(spec)
    socket.sethostname('sandbox')
    os.chdir('/tmp')
    argv = unprivileged(spec)
    child = os.fork()
    if child == 0:
        os.setsid()
        os.execve(argv[0], argv, spec['env'])
    # The namespace's init: reap orphans, and end (taking every process in it along) with the program.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    devnull = os.open('/dev/null', os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


if __name__ == '__main__':
    main()

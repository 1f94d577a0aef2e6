"""Single-model serving: a master process and SAGEMAKER_MODEL_SERVER_WORKERS worker processes.

The master imports the handler module (so a broken module fails once, before any fork) and the
image's framework (``_preload``), listens on the port and forks the workers. Each worker runs
``model_fn`` — as gunicorn's workers do in SageMaker's scikit-learn and XGBoost images — and reports
to the master over a socketpair. Until every worker has a model, the master answers ``/ping`` (and
anything else) with 503. Then the master stops answering and only accepts: it hands each new
connection (its file descriptor, over the worker's socketpair) to the serving worker with the fewest
open connections, as Node's cluster module does. berth's gateway keeps a few long-lived keep-alive
connections per container, and neither alternative spreads those evenly: on one shared socket
whichever worker wakes first takes a whole burst, and SO_REUSEPORT hashes them (bench/python saw 12
of 16 on one worker, 5 on the other, and a p99 latency several times the container's alone). A
worker that is still loading (a replacement) is given nothing; with none serving, new connections
wait in the listen backlog.

Worker lifecycle, as the master sees it:
- ``loading``: forked, running ``model_fn``.
- ``ready``: reported its model; waiting for the go (first start) or serving.
- ``serving``: given connections by the master.
A worker that fails ``model_fn`` ends the container: the master prints the Python error and exits 1,
so the endpoint fails with that error in FailureReason. A serving worker that dies (a crash in
native code, or the watchdog below) is replaced by a new one that loads the model again.

Timeouts: a hook running past SAGEMAKER_MODEL_SERVER_TIMEOUT is interrupted with SIGALRM and the
request answered 504. A worker stuck in native code where SIGALRM cannot reach it is killed by the
master's watchdog 10 s later (gunicorn's behaviour for a silent worker) and replaced.
"""
import mmap
import os
import signal
import socket
import struct
import sys
import time

from . import http
from .errors import HandlerTimeout
from .frameworks import StartupError, import_framework
from .handlers import user_traceback

WATCHDOG_GRACE_S = 10.0
STOP_GRACE_S = 25.0


def log(msg):
    print("berth/python: %s" % msg, file=sys.stderr, flush=True)


class Worker:
    __slots__ = ("index", "pid", "chan", "state", "started")

    def __init__(self, index, pid, chan):
        self.index = index
        self.pid = pid
        self.chan = chan
        self.state = "loading"
        self.started = time.monotonic()


class Master:
    def __init__(self, opts, handlers_factory, app_factory):
        self.opts = opts
        self.handlers_factory = handlers_factory
        self.app_factory = app_factory
        self.workers = {}
        self.serving = False
        self.stopping = False
        self.exit_code = 0
        self.pid = os.getpid()
        self.parent = os.getppid()
        # busy[i]: monotonic time worker i started its current request, 0 when idle.
        self.busy = mmap.mmap(-1, 8 * max(1, opts.workers))
        # closed[i]: connections worker i has closed; with given[i] (what the master handed it), the
        # number it holds open, without a message per close.
        self.closed = mmap.mmap(-1, 8 * max(1, opts.workers))
        self.given = {}
        # accepted connections no worker could take yet (the only one died): handed on at the next "L"
        self.waiting = []
        self.dispatching = False
        self.next_index = 0

    def run(self):
        self._preload()
        self.listener = http.bind(self.opts.port)
        self.port = self.listener.getsockname()[1]
        self.server = http.Server(self.listener, self._loading_app, self.opts.max_body, max_body_setting=self.opts.max_body_setting, force_close=True, tick=self._tick)
        self.server.install_wakeup()
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select; deaths are seen on the channels
        for i in range(self.opts.workers):
            self._spawn(i)
        self.server.serve_forever()
        self._reap_all()
        return self.exit_code

    def _preload(self):
        """Imports the image's framework (scikit-learn, XGBoost, PyTorch) once, before the fork.

        Before the port is bound, so a ping meanwhile is refused rather than left waiting. Importing
        it is most of a worker's start (scikit-learn 1.2-1.7 s, PyTorch 2.5 s on the development
        machine), and each worker did it again, in parallel on cores they shared. Forked after the
        import, the workers have it already and share its memory with the master until they write to
        it. The handler module is imported here already, so this adds no new kind of code to the
        master. If the import fails, the workers import what model_fn needs themselves, and report
        that failure in full if it is theirs too. BERTH_PRELOAD_FRAMEWORK=false turns it off.
        """
        name = self.opts.preload
        if name is None:
            return
        e = import_framework(name)
        if e is not None:
            log("%s could not be imported before the workers start (%s: %s); each worker imports what its "
                "model_fn needs." % (name, type(e).__name__, e))

    # -- the master's own answers while workers load ------------------------------------------
    def _loading_app(self, req):
        return 503, [("Content-Type", "text/plain")], b"The model is loading."

    # -- workers -------------------------------------------------------------------------------
    def _spawn(self, index):
        struct.pack_into("q", self.closed, 8 * index, 0)
        self.given[index] = 0
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            parent.close()
            code = 1
            try:
                code = _worker_main(index, child, self)
            except BaseException:  # noqa: BLE001 - a worker never returns into the master's code
                log("worker %d failed:\n%s" % (index, user_traceback(sys.exc_info()[1])))
            finally:
                os._exit(code)
        child.close()
        w = Worker(index, pid, parent)
        self.workers[index] = w
        self.server.add_reader(parent, lambda sock, w=w: self._from_worker(w))

    def _from_worker(self, w):
        try:
            data = w.chan.recv(65536)
        except OSError:
            data = b""
        if data[:1] == b"L":
            w.state = "serving"
            if self.server.listening and all(x.state == "serving" for x in self.workers.values()):
                # Every worker has its model: from here on the master only hands out connections.
                self.server.stop_listening()
                for conn in list(self.server.conns.values()):
                    self.server._close(conn)
                log("%d worker(s) serving on port %d." % (len(self.workers), self.port))
            self._dispatch_on()
            return
        if data[:1] == b"R":
            w.state = "ready"
            if self.serving:
                self._go(w)
            elif all(x.state == "ready" for x in self.workers.values()):
                self._all_ready()
            return
        if data[:1] == b"F":
            # model_fn failed: its error (sent whole, it is short) ends the container.
            message = data[1:]
            while True:
                more = b""
                try:
                    w.chan.settimeout(1.0)
                    more = w.chan.recv(65536)
                except OSError:
                    pass
                if not more:
                    break
                message += more
            self._forget(w)
            if not self.stopping:
                sys.stderr.write(message.decode("utf-8", "replace").rstrip() + "\n")
                sys.stderr.flush()
                self._fail()
            return
        # EOF: the worker died.
        self._forget(w)
        status = self._wait(w.pid)
        if self.stopping:
            return
        if w.state == "loading":
            log("worker %d (pid %d) died while loading the model (%s)." % (w.index, w.pid, status))
            self._fail()
            return
        log("worker %d (pid %d) %s; starting a new one." % (w.index, w.pid, status))
        struct.pack_into("d", self.busy, 8 * w.index, 0.0)
        self._spawn(w.index)

    # -- handing out connections -----------------------------------------------------------------
    def _dispatch_on(self):
        serving = [w for w in self.workers.values() if w.state == "serving"]
        while self.waiting and serving:
            sock = self.waiting.pop(0)
            if not self._hand(sock, serving):
                self.waiting.insert(0, sock)
                return
            sock.close()
        if not self.dispatching and not self.stopping and not self.server.listening:
            self.server.add_reader(self.listener, self._dispatch)
            self.dispatching = True

    def _dispatch_off(self):
        if self.dispatching:
            self.server.remove_reader(self.listener)
            self.dispatching = False

    def _dispatch(self, listener):
        for _ in range(64):
            serving = [w for w in self.workers.values() if w.state == "serving"]
            if not serving:
                # A replacement is loading: connections wait in the backlog until it serves.
                self._dispatch_off()
                return
            sock = http.accept(listener)
            if sock is None:
                return
            if self._hand(sock, serving):
                sock.close()  # the worker holds its own copy
            else:
                self.waiting.append(sock)
                self._dispatch_off()
                return

    def _hand(self, sock, serving):
        """To the worker holding the fewest open connections; ties go round the workers in turn. False
        when every channel refused it (the workers are dying)."""
        n = len(serving)
        start = self.next_index % n
        order = sorted(range(n), key=lambda k: (self._open(serving[(start + k) % n]), k))
        self.next_index += 1
        for k in order:
            w = serving[(start + k) % n]
            try:
                socket.send_fds(w.chan, [b"C"], [sock.fileno()])
            except OSError:
                continue  # it is going away; its channel's EOF is handled in _from_worker
            self.given[w.index] = self.given.get(w.index, 0) + 1
            return True
        return False

    def _open(self, w):
        (closed,) = struct.unpack_from("q", self.closed, 8 * w.index)
        return self.given.get(w.index, 0) - closed

    def _all_ready(self):
        self.serving = True
        for w in self.workers.values():
            self._go(w)

    def _go(self, w):
        try:
            w.chan.sendall(b"G")
        except OSError:
            pass

    def _forget(self, w):
        self.server.remove_reader(w.chan)
        w.chan.close()
        if self.workers.get(w.index) is w:
            del self.workers[w.index]

    def _wait(self, pid):
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return "exited"
        if os.WIFSIGNALED(status):
            return "was killed by signal %d" % os.WTERMSIG(status)
        return "exited with code %d" % os.WEXITSTATUS(status)

    def _fail(self):
        self.exit_code = 1
        self.stopping = True
        self._dispatch_off()
        for w in list(self.workers.values()):
            _kill(w.pid, signal.SIGKILL)
        self.server.stop(0)

    def _on_term(self, signum, frame):
        if self.stopping:
            return
        self.stopping = True
        self._dispatch_off()
        log("stopping: the workers finish their requests.")
        for w in self.workers.values():
            _kill(w.pid, signal.SIGTERM)
        self.server.stop(STOP_GRACE_S)
        # The loop ends when the master has no connections; the workers are awaited in _reap_all.

    def _tick(self):
        if os.getppid() != self.parent and not self.stopping:
            # Whoever started the container (berth's fleet) is gone: nobody will stop it otherwise.
            log("the process that started this container is gone; stopping.")
            self._on_term(signal.SIGTERM, None)
            return
        if not self.serving or self.stopping:
            return
        now = time.monotonic()
        limit = self.opts.timeout_s + WATCHDOG_GRACE_S
        for w in list(self.workers.values()):
            (since,) = struct.unpack_from("d", self.busy, 8 * w.index)
            if since and now - since > limit:
                log("worker %d (pid %d) has been in one request for %.0f s, past SAGEMAKER_MODEL_SERVER_TIMEOUT; killing it."
                    % (w.index, w.pid, now - since))
                _kill(w.pid, signal.SIGKILL)

    def _reap_all(self):
        deadline = time.monotonic() + (STOP_GRACE_S if self.exit_code == 0 else 2.0)
        pids = {w.pid for w in self.workers.values()}
        while pids and time.monotonic() < deadline:
            for pid in list(pids):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    pids.discard(pid)
            time.sleep(0.02)
        for pid in pids:
            _kill(pid, signal.SIGKILL)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _worker_main(index, chan, master):
    opts = master.opts
    signal.set_wakeup_fd(-1)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    master.server.sel.close()
    if master.listener is not None:
        master.listener.close()
    for conn in list(master.server.conns.values()):
        conn.sock.close()
    for w in master.workers.values():
        w.chan.close()
    master_pid = master.pid
    busy = master.busy
    closed_counts = master.closed
    slot = 8 * index
    try:
        handlers = master.handlers_factory()
        model = handlers.load()
    except BaseException as e:  # noqa: BLE001 - reported to the master, which ends the container
        if isinstance(e, StartupError):
            text = "berth/python: %s" % e
        else:
            text = "berth/python: model_fn failed in worker %d (pid %d):\n%s" % (index, os.getpid(), user_traceback(e))
        try:
            chan.sendall(b"F" + text.encode("utf-8", "replace"))
        except OSError:
            pass
        return 3
    chan.sendall(b"R")
    # Wait for the go: every worker has its model.
    chan.setblocking(True)
    if chan.recv(1) != b"G":
        return 0
    chan.sendall(b"L")
    invoke = master.app_factory(handlers, model)
    timeout_s = opts.timeout_s
    pack = struct.pack_into
    now = time.monotonic
    state = {"in_handler": False}

    def on_alarm(signum, frame):
        if state["in_handler"]:
            raise HandlerTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    setitimer = signal.setitimer
    ITIMER_REAL = signal.ITIMER_REAL

    def app(req):
        pack("d", busy, slot, now())
        state["in_handler"] = True
        setitimer(ITIMER_REAL, timeout_s)
        try:
            return invoke(req)
        except HandlerTimeout:
            return 504, [("Content-Type", "text/plain")], b"The model did not answer within SAGEMAKER_MODEL_SERVER_TIMEOUT."
        finally:
            state["in_handler"] = False
            setitimer(ITIMER_REAL, 0)
            pack("d", busy, slot, 0.0)

    def tick():
        if os.getppid() != master_pid:
            server.stop(0)  # the master is gone: so is this container

    closes = [0]

    def on_close():
        closes[0] += 1
        pack("q", closed_counts, slot, closes[0])

    server = http.Server(None, app, opts.max_body, max_body_setting=opts.max_body_setting, tick=tick, on_close=on_close)
    server.install_wakeup()

    def on_term(signum, frame):
        server.stop(STOP_GRACE_S)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    chan.setblocking(False)

    def from_master(sock):
        # Connections the master hands over; the end of the channel means the master is gone.
        try:
            data, fds, _, _ = socket.recv_fds(sock, 256, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        for fd in fds:
            server.adopt(socket.socket(fileno=fd))
        if not data:
            server.stop(STOP_GRACE_S)

    server.add_reader(chan, from_master)
    server.serve_forever()
    return 0

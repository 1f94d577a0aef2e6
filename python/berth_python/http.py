"""A small HTTP/1.1 server on the standard library: one event loop over epoll, keep-alive,
pipelining, chunked request bodies, ``Expect: 100-continue``, and a body limit.

Requests are handled one at a time on the loop's thread, because model code is CPU-bound and
rarely thread-safe: a worker process serves many connections but computes one answer at a time,
as a gunicorn gevent worker with one greenlet busy would. Parallelism comes from worker processes
sharing the listening socket (see prefork.py). ``http.server`` was not used: it parses headers with
``email`` and handles a connection per thread, which costs several times more per request.
"""
import collections
import errno
import os
import selectors
import signal
import socket
import threading
import time
import traceback

REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict",
    411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Entity", 424: "Failed Dependency", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 507: "Insufficient Storage",
}
MAX_HEAD_BYTES = 64 * 1024
# A large response is written with a blocking send bounded by this; clients here are berth's router.
WRITE_TIMEOUT_S = 30.0
_HEAD_END = b"\r\n\r\n"


class Request:
    __slots__ = ("method", "path", "query", "headers", "raw_headers", "body", "keep_alive")

    def __init__(self, method, path, query, headers, raw_headers, keep_alive):
        self.method = method
        self.path = path
        self.query = query
        #: header name (lower case) -> value; repeated headers joined with ", "
        self.headers = headers
        #: [(name as sent, value)], for the toolkit's Context
        self.raw_headers = raw_headers
        self.body = b""
        self.keep_alive = keep_alive


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_head(head):
    lines = head.split(b"\r\n")
    try:
        method, target, version = lines[0].decode("latin-1").split(" ", 2)
    except ValueError:
        raise BadRequest(400, "malformed request line") from None
    headers = {}
    raw = []
    for line in lines[1:]:
        i = line.find(b":")
        if i <= 0:
            raise BadRequest(400, "malformed header line")
        name = line[:i].decode("latin-1").strip()
        value = line[i + 1:].decode("latin-1").strip()
        raw.append((name, value))
        lname = name.lower()
        old = headers.get(lname)
        headers[lname] = value if old is None else old + ", " + value
    q = target.find("?")
    path, query = (target, "") if q < 0 else (target[:q], target[q + 1:])
    conn = headers.get("connection", "").lower()
    keep_alive = ("close" not in conn) if version == "HTTP/1.1" else ("keep-alive" in conn)
    return Request(method, path, query, headers, raw, keep_alive)


def response_bytes(status, headers, body, keep_alive):
    parts = ["HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown"))]
    for k, v in headers:
        parts.append("%s: %s\r\n" % (k, v))
    parts.append("Content-Length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append("Connection: close\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1", "replace") + body


class Deferred:
    """What an app returns for an answer computed on a thread (a model load): the loop goes on
    answering other connections, /ping included, until ``fn()`` returns the answer."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


class _Conn:
    __slots__ = ("sock", "buf", "pending", "head_len", "need", "chunked", "lingering", "busy")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pending = None  # a Request whose head is parsed and whose body is still arriving
        self.head_len = 0
        self.need = 0  # bytes of head + body the pending request occupies in buf
        self.chunked = False
        # After an error answer sent before the body was read: the rest is read and dropped until
        # the client closes, so it sees the answer rather than a reset (nginx's lingering close).
        self.lingering = False
        # A deferred answer is being computed: later requests on this connection wait their turn.
        self.busy = False


def _dechunk(buf, start):
    """Decodes a chunked body starting at buf[start:]; returns (body, end) or None if incomplete."""
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size") from None
        pos = eol + 2
        if size == 0:
            # trailers end with an empty line
            end = buf.find(b"\r\n", pos)
            while end >= 0 and end != pos:
                pos = end + 2
                end = buf.find(b"\r\n", pos)
            if end < 0:
                return None
            return bytes(out), end + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos:pos + size]
        pos += size + 2


class Server:
    """Serves ``app(request) -> (status, [(name, value)], body bytes)`` on a listening socket.

    ``readers`` lets the owner watch other file descriptors on the same loop (worker pipes), and
    ``tick`` runs about once a second (parent checks, watchdogs).
    """

    def __init__(self, listener, app, max_body, *, max_body_setting="", force_close=False, tick=None, tick_every=1.0,
                 on_close=None):
        self.listener = listener
        self.app = app
        self.max_body = max_body
        #: what set the limit, for the 413 message
        self.max_body_setting = max_body_setting
        self.force_close = force_close
        self.tick = tick
        self.tick_every = tick_every
        #: called after each connection closes (prefork's workers count them for the master)
        self.on_close = on_close
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.stopping = False
        self.stop_deadline = None
        self.current = None  # the connection whose request is being answered
        self.listening = False
        self._done = collections.deque()  # deferred answers ready to send
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeup)
        if listener is not None:
            self.start_listening()

    # -- loop ---------------------------------------------------------------------------------
    def install_wakeup(self):
        """Signals interrupt select() through this pipe, so handlers' flags are seen at once."""
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def add_reader(self, fd, callback):
        self.sel.register(fd, selectors.EVENT_READ, callback)

    def remove_reader(self, fd):
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    def start_listening(self):
        if not self.listening and self.listener is not None:
            self.listener.setblocking(False)
            self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
            self.listening = True

    def stop_listening(self):
        if self.listening:
            self.sel.unregister(self.listener)
            self.listening = False

    def stop(self, grace_s):
        """Stops accepting; requests already received are answered; idle connections close."""
        self.stopping = True
        self.stop_deadline = time.monotonic() + grace_s
        self.stop_listening()
        for conn in list(self.conns.values()):
            if conn is not self.current and not conn.busy and (conn.lingering or (not conn.buf and conn.pending is None)):
                self._close(conn)

    def serve_forever(self):
        next_tick = time.monotonic() + self.tick_every
        select = self.sel.select
        while True:
            if self.stopping and (not self.conns or time.monotonic() > self.stop_deadline):
                break
            timeout = max(0.0, next_tick - time.monotonic())
            for key, _ in select(timeout):
                key.data(key.fileobj)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.tick_every
                if self.tick is not None:
                    self.tick()
        for conn in list(self.conns.values()):
            self._close(conn)

    def _drain_wakeup(self, fd):
        try:
            while os.read(fd, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._done:
            conn, (status, headers, body), keep_alive = self._done.popleft()
            if self.conns.get(conn.sock.fileno()) is not conn:
                continue  # the client left while the answer was computed
            conn.busy = False
            keep_alive = keep_alive and not self.stopping
            try:
                self._send(conn, response_bytes(status, headers, body, keep_alive))
            except OSError:
                self._close(conn)
                continue
            if not keep_alive:
                self._close(conn)
            elif conn.buf:
                self._feed(conn)

    def _defer(self, conn, deferred, keep_alive):
        conn.busy = True

        def run():
            try:
                answer = deferred.fn()
            except Exception:  # noqa: BLE001 - a bug must not lose the connection's answer
                traceback.print_exc()
                answer = (500, [("Content-Type", "text/plain")], b"berth/python failed to answer; see the instance log.")
            self._done.append((conn, answer, keep_alive))
            try:
                os.write(self._wake_w, b"\0")
            except (BlockingIOError, InterruptedError):
                pass  # the pipe is full, so the loop wakes anyway

        threading.Thread(target=run, name="berth-deferred", daemon=True).start()

    def _accept(self, listener):
        for _ in range(64):
            sock = accept(listener)
            if sock is None:
                return
            self.adopt(sock)

    def adopt(self, sock):
        """Serves a connection accepted elsewhere (prefork's master hands them to its workers)."""
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        self.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, self._readable)

    def _close(self, conn):
        fd = conn.sock.fileno()
        if fd >= 0:
            if self.conns.pop(fd, None) is not None and self.on_close is not None:
                self.on_close()
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass

    def _readable(self, sock):
        conn = self.conns.get(sock.fileno())
        if conn is None:
            return
        try:
            data = sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if conn.lingering:
            return
        conn.buf += data
        self._feed(conn)

    def _feed(self, conn):
        try:
            self._process(conn)
        except BadRequest as e:
            try:
                self._send(conn, response_bytes(e.status, [("Content-Type", "text/plain")], e.message.encode(), False))
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn)
                return
            conn.lingering = True
            conn.buf = bytearray()
        except OSError:
            self._close(conn)

    def _process(self, conn):
        while True:
            if conn.busy:
                return
            buf = conn.buf
            req = conn.pending
            if req is None:
                end = buf.find(_HEAD_END)
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise BadRequest(431, "request head too large")
                    return
                req = parse_head(bytes(buf[:end]))
                head_len = conn.head_len = end + 4
                te = req.headers.get("transfer-encoding")
                if te is not None and "chunked" in te.lower():
                    conn.chunked = True
                    conn.need = head_len
                else:
                    conn.chunked = False
                    cl = req.headers.get("content-length")
                    try:
                        length = int(cl) if cl else 0
                    except ValueError:
                        raise BadRequest(400, "malformed Content-Length") from None
                    if length < 0:
                        raise BadRequest(400, "malformed Content-Length")
                    if length > self.max_body:
                        raise BadRequest(413, self._too_large(length))
                    conn.need = head_len + length
                conn.pending = req
                if req.headers.get("expect", "").lower() == "100-continue" and len(buf) < conn.need + (1 if conn.chunked else 0):
                    self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            if conn.chunked:
                decoded = _dechunk(buf, conn.need)
                if decoded is None:
                    if len(buf) - conn.need > self.max_body + 65536:
                        raise BadRequest(413, self._too_large(len(buf) - conn.need))
                    return
                req.body, used = decoded
                if len(req.body) > self.max_body:
                    raise BadRequest(413, self._too_large(len(req.body)))
            else:
                used = conn.need
                if len(buf) < used:
                    return
                req.body = bytes(buf[conn.head_len:used])
            del buf[:used]
            conn.pending = None
            keep_alive = req.keep_alive and not self.force_close and not self.stopping
            self.current = conn
            try:
                answer = self.app(req)
                if isinstance(answer, Deferred):
                    self._defer(conn, answer, keep_alive)
                    return
                status, headers, body = answer
            except Exception:  # noqa: BLE001 - a bug must not take the worker down
                traceback.print_exc()
                status, headers, body = 500, [("Content-Type", "text/plain")], b"berth/python failed to answer; see the instance log."
            finally:
                self.current = None
            # SIGTERM may have come while the app ran: this answer is then the connection's last.
            keep_alive = keep_alive and not self.stopping
            self._send(conn, response_bytes(status, headers, body, keep_alive))
            if not keep_alive:
                self._close(conn)
                return
            if self.stopping and not buf:
                self._close(conn)
                return

    def _too_large(self, n):
        return "The request body of %d bytes is larger than the limit of %d bytes%s." % (
            n, self.max_body, " (%s)" % self.max_body_setting if self.max_body_setting else "")

    def _send(self, conn, data):
        sock = conn.sock
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n < len(data):
            sock.settimeout(WRITE_TIMEOUT_S)
            try:
                sock.sendall(memoryview(data)[n:])
            finally:
                sock.setblocking(False)


def accept(listener):
    """The next pending connection of a non-blocking listener; None when there is none for now
    (including when the process is out of descriptors or memory: the connection waits in the backlog)."""
    try:
        sock, _ = listener.accept()
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as e:
        if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED):
            return None
        raise
    return sock


def bind(port, host="127.0.0.1", backlog=1024):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock

"""Multi-model mode (SAGEMAKER_MULTI_MODEL=true): the container API of container-contracts.md §3.2
with Multi Model Server's status codes and error body ``{"code", "type", "message"}``.

One process holds every model (SIT's multi-model default is one worker per model), so a load and
an unload reach the one place models live; requests, loads included, are served one at a time.
Each model's handler module is imported under a name of its own from ``<url>/code``.
"""
import gc
import json
import os
import re
import signal
import sys
import threading
import traceback
from urllib.parse import parse_qs, unquote

from . import http
from .errors import HandlerTimeout
from .frameworks import StartupError, import_framework
from .handlers import Handlers, code_dir_of, load_module, user_traceback
from .requirements import install_requirements

JSON_TYPE = [("Content-Type", "application/json")]


def _json(status, obj):
    return status, JSON_TYPE, json.dumps(obj).encode("utf-8")


def _error(status, kind, message):
    return _json(status, {"code": status, "type": kind, "message": message})


class Loaded:
    __slots__ = ("name", "url", "handlers", "model", "module_name")

    def __init__(self, name, url, handlers, model, module_name):
        self.name = name
        self.url = url
        self.handlers = handlers
        self.model = model
        self.module_name = module_name


class MultiModelServer:
    def __init__(self, opts, invoker):
        self.opts = opts
        self.invoker = invoker
        self.models = {}
        self.counter = 0
        self.loading = set()
        # Loads one at a time: importing users' modules edits sys.path and sys.modules.
        self.load_lock = threading.Lock()

    def run(self):
        listener = http.bind(self.opts.port)
        parent = os.getppid()

        def tick():
            # Whoever started the container (berth's fleet) is gone: nobody will stop it otherwise.
            if os.getppid() != parent and not server.stopping:
                server.stop(25.0)

        server = http.Server(listener, self.app, self.opts.max_body, max_body_setting=self.opts.max_body_setting, tick=tick)
        server.install_wakeup()
        signal.signal(signal.SIGTERM, lambda *_: server.stop(25.0))
        signal.signal(signal.SIGINT, lambda *_: server.stop(25.0))
        self.in_handler = False

        def on_alarm(signum, frame):
            if self.in_handler:
                raise HandlerTimeout()

        signal.signal(signal.SIGALRM, on_alarm)
        print("berth/python: multi-model mode, serving on port %d." % self.opts.port, file=sys.stderr, flush=True)
        if self.opts.preload:
            # The image's framework, imported while /ping already answers: the first model to load
            # then does not wait for it (scikit-learn 1.2-1.7 s, PyTorch 2.5 s). A load that comes
            # sooner waits for the rest of it.
            threading.Thread(target=self._preload, name="berth-preload", daemon=True).start()
        server.serve_forever()
        return 0

    def _preload(self):
        # Under the loads' lock: a load puts its model's code/ first on sys.path, where a module of the
        # user's could stand in for one the framework imports.
        with self.load_lock:
            e = import_framework(self.opts.preload)
        if e is not None:
            print("berth/python: %s could not be imported ahead of the first model (%s: %s); each model's model_fn "
                  "imports what it needs." % (self.opts.preload, type(e).__name__, e), file=sys.stderr, flush=True)

    def app(self, req):
        path = req.path
        if path == "/ping":
            return _json(200, {"status": "Healthy"})
        if path == "/models":
            if req.method == "POST":
                return self.load(req)
            if req.method == "GET":
                return self.list(req)
            return _error(405, "MethodNotAllowedException", "Use GET or POST on /models.")
        if path.startswith("/models/"):
            rest = path[len("/models/"):]
            if rest.endswith("/invoke"):
                if req.method != "POST":
                    return _error(405, "MethodNotAllowedException", "Use POST on /models/{name}/invoke.")
                return self.invoke(unquote(rest[:-len("/invoke")]), req)
            name = unquote(rest)
            if req.method == "GET":
                return self.describe(name)
            if req.method == "DELETE":
                return self.unload(name)
            return _error(405, "MethodNotAllowedException", "Use GET or DELETE on /models/{name}.")
        if path == "/invocations":
            return _error(400, "BadRequestException",
                          "This container is in multi-model mode: load a model with POST /models and invoke it with "
                          "POST /models/{name}/invoke.")
        return _error(404, "ResourceNotFoundException", "Requested resource is not found, please refer to API document.")

    # -- management ---------------------------------------------------------------------------
    def load(self, req):
        query = {k: v[-1] for k, v in parse_qs(req.query).items()}
        body = {}
        if req.body.strip():
            try:
                body = json.loads(req.body)
            except ValueError:
                return _error(400, "BadRequestException", "The body of POST /models must be JSON: {\"model_name\": …, \"url\": …}.")
            if not isinstance(body, dict):
                return _error(400, "BadRequestException", "The body of POST /models must be a JSON object.")
        name = body.get("model_name") or query.get("model_name")
        url = body.get("url") or query.get("url")
        if not name or not url or not isinstance(name, str) or not isinstance(url, str):
            return _error(400, "BadRequestException", "Parameters model_name and url are required.")
        if name in self.models or name in self.loading:
            return _error(409, "ConflictStatusException", "Model %s is already registered." % name)
        if not os.path.isdir(url):
            return _error(404, "ModelNotFoundException", "Model not found at url: %s" % url)
        # The user's model_fn may take minutes: it runs on a thread, so /ping and the other models
        # keep answering (berth would otherwise take the silent instance for dead).
        self.loading.add(name)

        def load_on_thread():
            try:
                with self.load_lock:
                    return self._load(name, url)
            finally:
                self.loading.discard(name)

        return http.Deferred(load_on_thread)

    def _load(self, name, url):
        self.counter += 1
        module_name = ("berth_model_%d_%s" % (self.counter, re.sub(r"\W", "_", name)))[:60]
        try:
            code_dir = code_dir_of(url, self.opts.submit_dir)
            if self.opts.install_requirements:
                install_requirements(code_dir, os.path.join(self.opts.work_dir, "models", module_name))
            module = load_module(code_dir, self.opts.program, self.opts.program_explicit, unique_name=module_name)
            handlers = Handlers(module, self.opts.defaults, url, name)
            model = handlers.load()
        except MemoryError:
            sys.modules.pop(module_name, None)
            gc.collect()
            print("berth/python: out of memory loading model %s:\n%s" % (name, traceback.format_exc().rstrip()),
                  file=sys.stderr, flush=True)
            return _error(507, "InsufficientMemoryException", "System out of memory while loading model %s." % name)
        except BaseException as e:  # noqa: BLE001 - the load's answer carries the error
            sys.modules.pop(module_name, None)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            detail = user_traceback(e)
            print("berth/python: model %s failed to load:\n%s" % (name, detail), file=sys.stderr, flush=True)
            last = str(e) if isinstance(e, StartupError) else detail.splitlines()[-1]
            return _error(500, "InternalServerException", "Failed to load model %s: %s" % (name, last))
        self.models[name] = Loaded(name, url, handlers, model, module_name)
        print("berth/python: loaded model %s from %s." % (name, url), file=sys.stderr, flush=True)
        return _json(200, {"status": "Model \"%s\" registered" % name})

    def list(self, req):
        query = {k: v[-1] for k, v in parse_qs(req.query).items()}
        try:
            limit = int(query.get("limit", 100))
            token = int(query.get("next_page_token", 0))
        except ValueError:
            return _error(400, "BadRequestException", "limit and next_page_token must be whole numbers.")
        limit = max(1, min(limit, 100))
        names = sorted(self.models)
        page = names[token:token + limit]
        out = {"models": [{"modelName": n, "modelUrl": self.models[n].url} for n in page]}
        if token + limit < len(names):
            out["nextPageToken"] = str(token + limit)
        return _json(200, out)

    def describe(self, name):
        m = self.models.get(name)
        if m is None:
            return _error(404, "ModelNotFoundException", "Model not found: %s" % name)
        return _json(200, {"modelName": m.name, "modelUrl": m.url})

    def unload(self, name):
        m = self.models.pop(name, None)
        if m is None:
            return _error(404, "ModelNotFoundException", "Model not found: %s" % name)
        sys.modules.pop(m.module_name, None)
        m.model = None
        m.handlers = None
        del m
        gc.collect()
        return _json(200, {"status": "Model \"%s\" unregistered" % name})

    def invoke(self, name, req):
        m = self.models.get(name)
        if m is None:
            return _error(404, "ModelNotFoundException", "Model not found: %s" % name)
        self.in_handler = True
        signal.setitimer(signal.ITIMER_REAL, self.opts.timeout_s)
        try:
            return self.invoker(m.handlers, m.model, req)
        except HandlerTimeout:
            return 504, [("Content-Type", "text/plain")], b"The model did not answer within SAGEMAKER_MODEL_SERVER_TIMEOUT."
        finally:
            self.in_handler = False
            signal.setitimer(signal.ITIMER_REAL, 0)

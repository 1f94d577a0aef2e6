"""The inference toolkit's handler semantics (container-contracts.md §2.2–2.4).

A handler module (``code/inference.py``, or ``SAGEMAKER_PROGRAM``) may define ``model_fn``,
``input_fn``, ``predict_fn``, ``output_fn``, ``transform_fn``, ``pre_model_fn`` and
``model_warmup_fn``; each may take one more argument than the toolkit's signature, the
``context``. What it leaves out comes from the framework's defaults (frameworks.py).
"""
import importlib.util
import inspect
import os
import sys
import traceback

from . import codecs
from .errors import HandlerTimeout, status_of
from .frameworks import StartupError

# hook -> number of arguments before the optional context
BASE_ARGS = {
    "pre_model_fn": 1, "model_fn": 1, "model_warmup_fn": 2,
    "input_fn": 2, "predict_fn": 2, "output_fn": 2, "transform_fn": 4,
}
UTF8_TYPES = ("application/json", "text/csv")
TRANSFORM_CONFLICT = ("Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                      "and/or output_fn implementation")
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class RequestProcessor:
    """MMS's ``context.request_processor[i]``: the request's headers as sent."""

    __slots__ = ("_props", "_lower")

    def __init__(self, raw_headers, headers):
        self._props = dict(raw_headers)
        self._lower = headers

    def get_request_properties(self):
        return self._props

    def get_request_property(self, key):
        return self._lower.get(key.lower())


class Context:
    """The ``context`` argument: MMS's Context surface (``system_properties``,
    ``request_processor``, ``get_request_header``, ``set_response_header``,
    ``set_response_status``) plus ``custom_attributes`` and ``request_headers`` shortcuts."""

    def __init__(self, model_dir, model_name, raw_headers=None, headers=None):
        self.system_properties = {
            "model_dir": model_dir, "gpu_id": None, "batch_size": 1,
            "server_name": "berth", "server_version": "0.1.0",
        }
        self.model_name = model_name
        self.request_headers = headers or {}
        self.request_processor = [RequestProcessor(raw_headers or [], self.request_headers)] if headers is not None else []
        self.response_headers = []
        self.response_status = None

    @property
    def custom_attributes(self):
        return self.request_headers.get("x-amzn-sagemaker-custom-attributes")

    def get_request_header(self, idx, key):
        return self.request_headers.get(key.lower())

    def get_all_request_header(self, idx=0):
        return dict(self.request_processor[idx].get_request_properties()) if self.request_processor else {}

    def set_response_header(self, idx, key, value):
        self.response_headers.append((_clean(key), _clean(value)))

    def set_response_status(self, code=200, phrase=""):
        self.response_status = int(code)

    def set_response_content_type(self, idx, value):
        self.set_response_header(idx, "Content-Type", value)


def _clean(value):
    # Header injection guard, as the toolkit strips CR/LF from its phrase.
    return str(value).replace("\r", " ").replace("\n", " ")


class Hook:
    __slots__ = ("fn", "ctx", "name")

    def __init__(self, fn, name):
        self.fn = fn
        self.name = name
        self.ctx = _takes_context(fn, name)

    def __call__(self, ctx, *args):
        if self.ctx:
            return self.fn(*args, ctx)
        return self.fn(*args)


def _takes_context(fn, name):
    """The toolkit passes ``context`` when the hook declares one more parameter than its base."""
    base = BASE_ARGS[name]
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    n = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    required = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)
    if n == base + 1:
        return True
    if n == base or required <= base < n:
        return False
    raise StartupError("%s takes %d arguments but the toolkit calls it with %d (or %d with the context)."
                       % (name, n, base, base + 1))


def code_dir_of(model_dir, submit_dir=None):
    """``<model>/code``; SAGEMAKER_SUBMIT_DIRECTORY re-rooted when it names /opt/ml/model."""
    if submit_dir:
        if submit_dir.startswith("file://"):
            submit_dir = submit_dir[len("file://"):]
        if submit_dir.startswith("/opt/ml/model"):
            return os.path.join(model_dir, submit_dir[len("/opt/ml/model"):].lstrip("/"))
        if submit_dir.startswith(("s3://", "http://", "https://")):
            raise StartupError(
                "SAGEMAKER_SUBMIT_DIRECTORY=%s is not fetched by berth: put the code in the model artifact under code/ "
                "(the SageMaker SDK does when it repacks a model) and leave SAGEMAKER_SUBMIT_DIRECTORY unset." % submit_dir)
        return submit_dir
    return os.path.join(model_dir, "code")


def program_name(program):
    name = program[:-3] if program.endswith(".py") else program
    return name, name.replace(".", os.sep) + ".py"


def load_module(code_dir, program, explicit, unique_name=None):
    """Imports the handler module with ``code/`` (and ``code/lib``) first on sys.path.

    Returns None when the default ``inference.py`` is absent (the toolkit then uses its defaults);
    a SAGEMAKER_PROGRAM that names a missing file is an error. With ``unique_name`` (multi-model)
    the module is registered under that name, sys.path is restored afterwards and the modules it
    imported from its own folder are forgotten, so two models' same-named files never mix.
    """
    name, rel = program_name(program)
    path = os.path.join(code_dir, rel)
    if not os.path.isfile(path):
        if explicit:
            have = sorted(os.listdir(code_dir)) if os.path.isdir(code_dir) else None
            raise StartupError("SAGEMAKER_PROGRAM=%s names code/%s, which is not in the model artifact (%s)."
                               % (program, rel, ("code/ holds: " + ", ".join(have)) if have else "there is no code/ folder"))
        return None
    added = [p for p in (code_dir, os.path.join(code_dir, "lib")) if os.path.isdir(p)]
    for p in reversed(added):
        sys.path.insert(0, p)
    before = set(sys.modules)
    mod_name = unique_name or name
    try:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(mod_name, None)
            raise
    finally:
        if unique_name:
            for p in added:
                try:
                    sys.path.remove(p)
                except ValueError:
                    pass
            root = os.path.abspath(code_dir) + os.sep
            for m in set(sys.modules) - before:
                f = getattr(sys.modules.get(m), "__file__", None) or ""
                if m != mod_name and os.path.abspath(f).startswith(root):
                    del sys.modules[m]
    return module


class Handlers:
    """One model's hooks: the user's where defined, the framework's otherwise."""

    def __init__(self, module, defaults, model_dir, model_name="model"):
        self.module = module
        self.defaults = defaults
        self.model_dir = model_dir
        self.model_name = model_name
        user = {}
        for name in BASE_ARGS:
            fn = getattr(module, name, None) if module is not None else None
            if fn is not None and callable(fn):
                user[name] = Hook(fn, name)
        if "transform_fn" in user and any(k in user for k in ("input_fn", "predict_fn", "output_fn")):
            raise StartupError(TRANSFORM_CONFLICT)
        self.user = user
        self.wants_context = any(h.ctx for h in user.values())
        self._bind(defaults)

    def _bind(self, defaults):
        u = self.user
        self.input_fn = u.get("input_fn") or _default(defaults.input_fn, "input_fn")
        self.predict_fn = u.get("predict_fn") or _default(defaults.predict_fn, "predict_fn")
        self.output_fn = u.get("output_fn") or _default(defaults.output_fn, "output_fn")
        self.transform_fn = u.get("transform_fn")

    def load(self):
        """pre_model_fn -> model_fn -> model_warmup_fn, as the toolkit initialises a worker."""
        ctx = Context(self.model_dir, self.model_name) if self.wants_context else None
        u = self.user
        if "pre_model_fn" in u:
            u["pre_model_fn"](ctx, self.model_dir)
        if "model_fn" in u:
            model = u["model_fn"](ctx, self.model_dir)
        else:
            model = self.defaults.model_fn(self.model_dir)
        if self.defaults is not None and hasattr(self.defaults, "for_model"):
            self._bind(self.defaults.for_model(model))
        if "model_warmup_fn" in u:
            u["model_warmup_fn"](ctx, self.model_dir, model)
        return model

    def transform(self, model, data, content_type, accept, ctx):
        if self.transform_fn is not None:
            return self.transform_fn(ctx, model, data, content_type, accept)
        return self.output_fn(ctx, self.predict_fn(ctx, self.input_fn(ctx, data, content_type), model), accept)


def _default(fn, name):
    h = Hook.__new__(Hook)
    h.fn = fn
    h.name = name
    h.ctx = False
    return h


class Invoker:
    """Turns a request into the toolkit's call and its result (or error) into a response."""

    def __init__(self, default_accept, timeout_s, log_prefix="berth/python"):
        self.default_accept = default_accept
        self.timeout_s = timeout_s
        self.log_prefix = log_prefix

    def __call__(self, handlers, model, req):
        headers = req.headers
        content_type = headers.get("content-type")
        accept = headers.get("accept")
        if not accept or accept == "*/*":
            accept = self.default_accept
        data = req.body
        if content_type in UTF8_TYPES:
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                return 400, [("Content-Type", "text/plain")], b"The body is not valid UTF-8 for its Content-Type."
        ctx = Context(handlers.model_dir, handlers.model_name, req.raw_headers, headers) if handlers.wants_context else None
        try:
            result = handlers.transform(model, data, content_type, accept, ctx)
        except HandlerTimeout:
            msg = ("The model did not answer within SAGEMAKER_MODEL_SERVER_TIMEOUT=%g seconds; the invocation was stopped."
                   % self.timeout_s)
            print("%s: %s" % (self.log_prefix, msg), file=sys.stderr, flush=True)
            return 504, [("Content-Type", "text/plain")], msg.encode()
        except Exception as e:  # noqa: BLE001 - every handler error becomes an answer
            return self.error(e)
        if isinstance(result, tuple):
            body = result[0]
            out_type = result[1] if len(result) > 1 else accept
        else:
            body, out_type = result, accept
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is None:
            body = b""
        elif not isinstance(body, bytes):
            try:
                body = bytes(body)
            except TypeError:
                return self.error(TypeError(
                    "output_fn/transform_fn returned a %s; return bytes or str (or a (body, content_type) tuple)"
                    % type(body).__name__))
        status = 200
        out_headers = [("Content-Type", _clean(out_type))]
        if ctx is not None:
            if ctx.response_status:
                status = ctx.response_status
            for k, v in ctx.response_headers:
                if k.lower() == "content-type":
                    out_headers[0] = (k, v)
                else:
                    out_headers.append((k, v))
        return status, out_headers, body

    def error(self, e):
        status = status_of(e)
        if status is not None:
            message = getattr(e, "message", None) or str(e)
            if status >= 500:
                print("%s: a handler answered %d: %s" % (self.log_prefix, status, message), file=sys.stderr, flush=True)
            return status, [("Content-Type", "text/plain")], str(message).encode("utf-8")
        # The traceback goes to the instance log (`berth logs`); the caller gets the error itself.
        print("%s: the handler raised during an invocation:\n%s" % (self.log_prefix, user_traceback(e)),
              file=sys.stderr, flush=True)
        text = str(e)
        message = "%s: %s" % (type(e).__name__, text) if text else type(e).__name__
        return 500, [("Content-Type", "text/plain")], message.encode("utf-8")


def user_traceback(exc):
    """The traceback of ``exc`` without berth's and importlib's own frames, at most the last eight
    frames: short enough that its last lines fit in FailureReason (1024 characters)."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    frames = [f for f in te.stack
              if not os.path.abspath(f.filename).startswith(PACKAGE_DIR + os.sep)
              and not f.filename.startswith("<frozen importlib")]
    lines = []
    if frames:
        left_out = len(frames) - 8
        if left_out > 0:
            frames = frames[-8:]
        lines.append("Traceback (most recent call last):" + (" (%d earlier frames left out)" % left_out if left_out > 0 else ""))
        for f in frames:
            lines.append('  File "%s", line %s, in %s' % (f.filename, f.lineno, f.name))
            if f.line:
                lines.append("    " + f.line.strip())
    lines.extend(line.rstrip("\n") for line in te.format_exception_only())
    return "\n".join(lines)

"""The container's composition root: reads its arguments and SageMaker's environment once, then
serves one model (prefork.py) or many (mme.py)."""
import argparse
import os
import sys

from .frameworks import FRAMEWORKS, StartupError
from .handlers import Handlers, Invoker, code_dir_of, load_module, user_traceback
from .requirements import install_requirements, note_skipped

COMPAT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compat")


class Options:
    """Everything the container reads from its environment, validated."""

    def __init__(self, args, env):
        self.framework = args.framework
        self.defaults = FRAMEWORKS[args.framework]
        self.install_requirements = args.install_requirements
        self.port = _int(env, "SAGEMAKER_BIND_TO_PORT", 8080, 0, 65535)
        self.workers = _int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", _cpus(), 1, 256)
        self.timeout_s = _number(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60.0)
        self.max_body = int(_number(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6.0) * 1024 * 1024)
        self.max_body_setting = "SAGEMAKER_MAX_PAYLOAD_IN_MB=%s" % (env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or "6")
        self.default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json"
        program = env.get("SAGEMAKER_PROGRAM") or ""
        self.program_explicit = bool(program)
        self.program = program or "inference.py"
        self.submit_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or None
        base = env.get("SAGEMAKER_BASE_DIR")
        self.model_dir = env.get("SM_MODEL_DIR") or os.path.join(base or "/opt/ml", "model")
        self.work_dir = os.path.join(base or os.getcwd(), ".berth-python")
        self.multi_model = (env.get("SAGEMAKER_MULTI_MODEL") or "").lower() == "true"
        #: The framework package to import ahead of any model_fn (prefork.py before the fork, mme.py
        #: as it starts), or None: the image has none, or BERTH_PRELOAD_FRAMEWORK=false.
        self.preload = self.defaults.preload if _flag(env, "BERTH_PRELOAD_FRAMEWORK", True) else None


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _flag(env, name, default):
    raw = (env.get(name) or "").lower()
    if raw == "":
        return default
    if raw not in ("true", "false"):
        raise StartupError("%s=%s must be true or false." % (name, env.get(name)))
    return raw == "true"


def _number(env, name, default):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StartupError("%s=%s is not a number." % (name, raw)) from None
    if value <= 0:
        raise StartupError("%s=%s must be greater than 0." % (name, raw))
    return value


def _int(env, name, default, lo, hi):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StartupError("%s=%s is not a whole number." % (name, raw)) from None
    if not lo <= value <= hi:
        raise StartupError("%s=%s must be between %d and %d." % (name, raw, lo, hi))
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(prog="berth-python", description="berth's Python container")
    p.add_argument("--framework", choices=sorted(FRAMEWORKS), default="auto",
                   help="whose defaults serve what the handler module leaves out")
    p.add_argument("--install-requirements", action="store_true",
                   help="pip install code/requirements.txt before loading (berth's pythonInstallRequirements)")
    p.add_argument("command", choices=["serve"])
    return p.parse_args(argv)


def main(argv, env=None):
    env = os.environ if env is None else env
    args = parse_args(argv)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except AttributeError:
        pass
    # The inference toolkit's module names (sagemaker_inference.errors, .decoder, …) for handler
    # modules that import them; an installed sagemaker_inference comes first.
    sys.path.append(COMPAT_DIR)
    try:
        opts = Options(args, env)
        if opts.framework == "xgboost":
            # SageMaker's XGBoost container's default (set_default_serving_env_if_unspecified).
            os.environ.setdefault("OMP_NUM_THREADS", "1")
        invoker = Invoker(opts.default_accept, opts.timeout_s)
        if opts.multi_model:
            from .mme import MultiModelServer

            return MultiModelServer(opts, invoker).run()
        return _single(opts, invoker)
    except StartupError as e:
        print("berth/python: %s" % e, file=sys.stderr, flush=True)
        return 1


def _single(opts, invoker):
    from .prefork import Master

    code_dir = code_dir_of(opts.model_dir, opts.submit_dir)
    if opts.install_requirements:
        install_requirements(code_dir, os.path.join(opts.work_dir, "site-packages"))
    else:
        note_skipped(code_dir)
    try:
        module = load_module(code_dir, opts.program, opts.program_explicit)
        handlers = Handlers(module, opts.defaults, opts.model_dir)
    except StartupError:
        raise
    except BaseException as e:  # noqa: BLE001 - an import error is the user's to read
        if isinstance(e, KeyboardInterrupt):
            raise
        print("berth/python: cannot import the handler module code/%s:\n%s" % (opts.program, user_traceback(e)),
              file=sys.stderr, flush=True)
        return 1
    where = ("code/%s" % opts.program) if module is not None else "no handler module: %s defaults" % opts.defaults.name
    print("berth/python: %s framework, %d worker(s), model in %s, %s." % (opts.defaults.name, opts.workers, opts.model_dir, where),
          file=sys.stderr, flush=True)

    def app_factory(h, model):
        execution_parameters = getattr(module, "execution_parameters_fn", None) if module is not None else None

        def app(req):
            path = req.path
            if path == "/invocations":
                if req.method != "POST":
                    return 405, [("Content-Type", "text/plain")], b"Use POST on /invocations."
                return invoker(h, model, req)
            if path == "/ping":
                return 200, [], b""
            if path == "/execution-parameters" and execution_parameters is not None:
                import json

                return 200, [("Content-Type", "application/json")], json.dumps(execution_parameters()).encode()
            return 404, [("Content-Type", "application/json")], b"{}"

        return app

    return Master(opts, lambda: handlers, app_factory).run()

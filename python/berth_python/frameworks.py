"""Framework defaults: what runs for a hook the user's module does not define (§2.5, §5.9).

Each image names its framework (``--framework``): ``sklearn`` (sagemaker-scikit-learn),
``xgboost`` (sagemaker-xgboost with SAGEMAKER_PROGRAM: framework mode), ``pytorch``
(pytorch-inference) or ``auto`` (berth/python: the model files, then the model object, decide).

AWS's scikit-learn and XGBoost images have no default ``model_fn`` (they raise
NotImplementedError); berth loads the usual files instead, so a model whose artifact holds only
``model.joblib`` serves without any code. Everything else follows the AWS containers, except that
a single CSV row is a 2-D array of one row (see codecs.py).
"""
import importlib
import os
import pickle

from . import codecs
from .errors import UnsupportedContentType

LIBSVM = ("text/libsvm", "text/x-libsvm", "libsvm")


class StartupError(Exception):
    """A reason the model cannot be served, written for the person who deployed it."""


def _files(model_dir):
    try:
        return sorted(n for n in os.listdir(model_dir) if not n.startswith("."))
    except OSError:
        return []


def import_framework(name):
    """Imports the package ``name`` (the image's framework, ``Options.preload``) ahead of any model_fn.

    Returns the exception when it fails, for the caller to report: what needs the framework then
    imports it itself and reports that failure in full, with its traceback, if it is its own.
    """
    try:
        importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - reported by the caller, raised again where it matters
        return e
    return None


def _listing(model_dir):
    names = _files(model_dir)
    return ", ".join(names) if names else "nothing"


class Defaults:
    """The inference toolkit's generic defaults, with a model-type guess for ``predict_fn``."""

    name = "generic"
    #: The framework's own package, imported ahead of any model_fn: by the master before it forks the
    #: workers (prefork.py), by a thread as the multi-model server starts (mme.py).
    preload = None

    def model_fn(self, model_dir):
        for fw in (PYTORCH, SKLEARN, XGBOOST):
            if fw.find_model_file(model_dir, quiet=True):
                return fw.model_fn(model_dir)
        raise StartupError(
            "There is no model_fn in the handler module and no model file berth knows how to load in the model folder "
            "(model.pt or *.pth for PyTorch TorchScript, model.joblib or *.pkl for scikit-learn, xgboost-model for XGBoost); "
            "the model folder holds: %s." % _listing(model_dir))

    def find_model_file(self, model_dir, quiet=False):
        return None

    def for_model(self, model):
        """berth/python picks the defaults for the rest by what model_fn returned."""
        mod = type(model).__module__ or ""
        if mod.startswith("torch"):
            return PYTORCH
        if mod.startswith("xgboost") and type(model).__name__ == "Booster":
            return XGBOOST
        if hasattr(model, "predict"):
            return SKLEARN
        return self

    def input_fn(self, data, content_type):
        x = codecs.decode(data, content_type)
        if getattr(x, "ndim", 2) == 1:
            x = x.reshape(1, -1)
        return x

    def predict_fn(self, data, model):
        if hasattr(model, "predict"):
            return model.predict(data)
        if callable(model):
            return model(data)
        raise NotImplementedError(
            "The model returned by model_fn (a %s) has no predict method and is not callable; "
            "write a predict_fn in code/inference.py." % type(model).__name__)

    def output_fn(self, prediction, accept):
        return codecs.encode_first(prediction, accept)


class SklearnDefaults(Defaults):
    name = "sklearn"
    preload = "sklearn"
    PATTERNS = ("model.joblib", "model.pkl")
    SUFFIXES = (".joblib", ".pkl", ".pickle")

    def find_model_file(self, model_dir, quiet=False):
        names = _files(model_dir)
        for n in self.PATTERNS:
            if n in names:
                return os.path.join(model_dir, n)
        found = [n for n in names if n.endswith(self.SUFFIXES) and os.path.isfile(os.path.join(model_dir, n))]
        if len(found) == 1:
            return os.path.join(model_dir, found[0])
        if quiet:
            return None
        raise StartupError(
            "There is no model_fn in the handler module, and the scikit-learn default loads model.joblib, model.pkl or "
            "the only *.joblib/*.pkl file of the model folder, which holds: %s." % _listing(model_dir))

    def model_fn(self, model_dir):
        path = self.find_model_file(model_dir)
        try:
            import joblib
        except ImportError:
            with open(path, "rb") as f:
                return pickle.load(f)
        return joblib.load(path)

    def for_model(self, model):
        return self

    def input_fn(self, data, content_type):
        x = codecs.decode(data, content_type)
        # The scikit-learn container reads JSON and CSV as float32 (serving.py default_input_fn).
        if codecs.media_type(content_type) in (codecs.JSON, codecs.CSV) and x.dtype.kind in "fiub":
            x = x.astype(codecs.np().float32)
        if getattr(x, "ndim", 2) == 1:
            x = x.reshape(1, -1)
        return x

    def predict_fn(self, data, model):
        return model.predict(data)


class XgboostDefaults(Defaults):
    """XGBoost framework mode: DMatrix in, ``Booster.predict(validate_features=False)``."""

    name = "xgboost"
    preload = "xgboost"

    def find_model_file(self, model_dir, quiet=False):
        names = [n for n in _files(model_dir) if os.path.isfile(os.path.join(model_dir, n))]
        if "xgboost-model" in names:
            return os.path.join(model_dir, "xgboost-model")
        candidates = [n for n in names if n.endswith((".json", ".ubj", ".bst", ".model", ".bin", ".pkl"))]
        if len(candidates) == 1:
            return os.path.join(model_dir, candidates[0])
        if quiet:
            return None
        raise StartupError(
            "There is no model_fn in the handler module, and the XGBoost default loads xgboost-model (or the only "
            ".json/.ubj/.bst/.bin/.pkl file) from the model folder, which holds: %s." % _listing(model_dir))

    def model_fn(self, model_dir):
        import xgboost as xgb

        path = self.find_model_file(model_dir)
        # As SageMaker's XGBoost container loads models: a pickle first, then XGBoost's own formats.
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception:
            booster = xgb.Booster()
            booster.load_model(path)
            return booster

    def for_model(self, model):
        return self

    def input_fn(self, data, content_type):
        import xgboost as xgb

        kind = codecs.media_type(content_type)
        if kind in LIBSVM:
            return xgb.DMatrix(_libsvm_to_array(codecs._text(data)))
        if kind in (codecs.CSV, codecs.JSON, codecs.NPY, codecs.NPZ):
            x = codecs.decode(data, content_type)
            if getattr(x, "ndim", 2) == 1:
                x = x.reshape(1, -1)
            return xgb.DMatrix(x)
        raise UnsupportedContentType(content_type, (codecs.CSV, "text/libsvm", codecs.JSON, codecs.NPY))

    def predict_fn(self, data, model):
        if type(model).__name__ == "Booster":
            return model.predict(data, validate_features=False)
        return model.predict(data)


def _libsvm_to_array(text):
    """``label i:v …`` rows -> dense float rows, absent entries missing (NaN); 1-based indices
    shift to 0-based when no 0 index appears, as XGBoost's container does."""
    numpy = codecs.np()
    rows = []
    lowest = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        entries = {}
        for tok in parts:
            if ":" not in tok:
                continue  # the label
            i, v = tok.split(":", 1)
            i = int(i)
            entries[i] = float(v)
            lowest = i if lowest is None else min(lowest, i)
        rows.append(entries)
    shift = 1 if lowest is not None and lowest >= 1 else 0
    width = max((max(r) for r in rows if r), default=0) + 1 - shift
    out = numpy.full((len(rows), max(width, 0)), numpy.nan, dtype=numpy.float32)
    for r, entries in enumerate(rows):
        for i, v in entries.items():
            out[r, i - shift] = v
    return out


class PytorchDefaults(Defaults):
    """The PyTorch inference toolkit's defaults: TorchScript ``model.pt``, tensors in and out."""

    name = "pytorch"
    preload = "torch"

    def find_model_file(self, model_dir, quiet=False):
        names = _files(model_dir)
        if "model.pt" in names:
            return os.path.join(model_dir, "model.pt")
        found = [n for n in names if n.endswith((".pt", ".pth"))]
        if len(found) == 1:
            return os.path.join(model_dir, found[0])
        if quiet:
            return None
        raise StartupError(
            "There is no model_fn in the handler module, and the PyTorch default needs model.pt or exactly one .pth or "
            ".pt file in the model folder, which holds: %s." % _listing(model_dir))

    def model_fn(self, model_dir):
        import torch

        path = self.find_model_file(model_dir)
        try:
            return torch.jit.load(path, map_location=_device())
        except RuntimeError as e:
            raise StartupError("Failed to load %s. Please ensure the model is saved using TorchScript (torch.jit.save); "
                               "otherwise write a model_fn. (%s)" % (os.path.basename(path), str(e).splitlines()[0])) from e

    def for_model(self, model):
        return self

    def input_fn(self, data, content_type):
        import torch

        x = codecs.decode(data, content_type)
        if codecs.media_type(content_type) in (codecs.JSON, codecs.CSV):
            t = torch.FloatTensor(x)
        else:
            t = torch.from_numpy(x)
        return t.to(_device())

    def predict_fn(self, data, model):
        import torch

        model.eval()
        with torch.no_grad():
            return model(data)

    def output_fn(self, prediction, accept):
        import torch

        if isinstance(prediction, torch.Tensor):
            prediction = prediction.detach().cpu().numpy().tolist()
        return codecs.encode_first(prediction, accept)


_DEVICE = None


def _device():
    global _DEVICE
    if _DEVICE is None:
        import torch

        _DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return _DEVICE


GENERIC = Defaults()
SKLEARN = SklearnDefaults()
XGBOOST = XgboostDefaults()
PYTORCH = PytorchDefaults()
FRAMEWORKS = {"auto": GENERIC, "sklearn": SKLEARN, "xgboost": XGBOOST, "pytorch": PYTORCH}

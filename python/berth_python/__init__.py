"""berth's Python container: SageMaker's container contract and the inference toolkit's handler
semantics (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``, ``transform_fn``) on the
standard library. Run it as ``python3 <repo>/python/berth-python.py [--framework NAME] serve``.

User code may raise :class:`InferenceError` to answer with a status of its choosing.
"""
from .errors import InferenceError

__all__ = ["InferenceError"]
__version__ = "0.1.0"

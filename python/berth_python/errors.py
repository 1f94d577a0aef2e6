"""Errors that answer an invocation with a status of their own."""


class InferenceError(Exception):
    """Raise it from a hook to answer with ``status`` and ``message`` (plain text), like the
    inference toolkit's ``BaseInferenceToolkitError(status_code, message, phrase)``.

    Any exception with an integer ``status_code`` attribute between 400 and 599 is honoured the
    same way, so ``sagemaker_inference.errors.GenericInferenceToolkitError`` works unchanged.
    """

    def __init__(self, status, message, phrase=None):
        super().__init__(message)
        self.status_code = int(status)
        self.message = message
        self.phrase = phrase


class UnsupportedContentType(InferenceError):
    """A default ``input_fn`` cannot read the request's Content-Type: 415."""

    def __init__(self, content_type, supported):
        super().__init__(415, "Content type %s is not supported by this model's default input_fn; "
                         "supported: %s. Send one of them or write an input_fn in code/inference.py."
                         % (content_type if content_type else "(none)", ", ".join(supported)))


class UnsupportedAccept(InferenceError):
    """A default ``output_fn`` cannot produce any type the request's Accept names: 406."""

    def __init__(self, accept, supported):
        super().__init__(406, "Accept %s is not supported by this model's default output_fn; "
                         "supported: %s. Ask for one of them or write an output_fn in code/inference.py."
                         % (accept, ", ".join(supported)))


class HandlerTimeout(BaseException):
    """Raised inside a hook that ran past SAGEMAKER_MODEL_SERVER_TIMEOUT. A BaseException, so a
    hook's own ``except Exception`` does not swallow it."""


def status_of(exc):
    """The status an exception asks for, or None."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status <= 599:
        return status
    return None

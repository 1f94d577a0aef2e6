"""``encoder.encode(array_like, content_type)`` with berth's default encoders."""
from berth_python import codecs as _codecs
from berth_python.errors import UnsupportedAccept as _Unsupported

from . import errors

SUPPORTED_CONTENT_TYPES = set(_codecs.ENCODABLE)


def encode(array_like, content_type):
    try:
        return _codecs.encode(array_like, content_type)
    except _Unsupported:
        raise errors.UnsupportedFormatError(content_type, status_code=406) from None

"""``decoder.decode(data, content_type)`` with berth's default decoders."""
from berth_python import codecs as _codecs
from berth_python.errors import UnsupportedContentType as _Unsupported

from . import errors


def decode(obj, content_type):
    try:
        return _codecs.decode(obj, content_type)
    except _Unsupported:
        raise errors.UnsupportedFormatError(content_type, status_code=415) from None

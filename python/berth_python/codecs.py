"""Default decoders and encoders (container-contracts.md §2.3), numpy imported only when used.

Differences from the inference toolkit, on purpose:
- Media types are matched without their parameters and case (``text/csv; charset=utf-8`` is CSV).
- A CSV body is always a 2-D array, one row per line: a single row is ``(1, n)``, not squeezed to
  1-D, so ``model.predict`` gets the 2-D input every scikit-learn and XGBoost model expects.
- An empty CSV field is NaN (a missing value), as XGBoost's container reads it.
- NPY is read with ``allow_pickle=False`` (the scikit-learn image's fix for CWE-502).
"""
import csv
import io
import json

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
DECODABLE = (JSON, CSV, NPY, NPZ)
ENCODABLE = (JSON, CSV, NPY)

_np = None


def np():
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def media_type(content_type):
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def split_accept(accept):
    """``"text/csv, application/json;q=0.9"`` -> ``["text/csv", "application/json"]``."""
    return [media_type(part) for part in accept.split(",") if part.strip()]


def _text(data):
    return data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data


def _bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def csv_rows(text):
    return [row for row in csv.reader(io.StringIO(text)) if row]


def csv_to_array(text):
    numpy = np()
    rows = csv_rows(text)
    if not rows:
        return numpy.empty((0, 0))
    try:
        return numpy.array(rows, dtype=numpy.float64)
    except ValueError:
        pass
    try:
        nan = float("nan")
        return numpy.array([[float(v) if v.strip() else nan for v in row] for row in rows], dtype=numpy.float64)
    except ValueError:
        return numpy.array(rows)


def decode(data, content_type):
    """Bytes or str of ``content_type`` -> numpy array (a scipy sparse matrix for NPZ ones)."""
    from .errors import UnsupportedContentType

    kind = media_type(content_type)
    if kind == JSON:
        return np().array(json.loads(_text(data)))
    if kind == CSV:
        return csv_to_array(_text(data))
    if kind == NPY:
        return np().load(io.BytesIO(_bytes(data)), allow_pickle=False)
    if kind == NPZ:
        return _load_npz(_bytes(data))
    raise UnsupportedContentType(content_type, DECODABLE)


def _load_npz(data):
    try:
        import scipy.sparse

        return scipy.sparse.load_npz(io.BytesIO(data))
    except ImportError:
        pass
    except (ValueError, KeyError):
        pass
    # Not a sparse matrix (or no scipy): a plain np.savez archive of one array.
    arrays = np().load(io.BytesIO(data), allow_pickle=False)
    names = list(arrays.keys())
    if len(names) != 1:
        raise ValueError("an application/x-npz body must hold one sparse matrix or one array; it holds %d arrays" % len(names))
    return arrays[names[0]]


def to_plain(value):
    """numpy arrays, numpy scalars and tensors -> lists and Python numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def encode_json(value):
    return json.dumps(to_plain(value)).encode("utf-8")


def encode_csv(value):
    plain = to_plain(value)
    if not isinstance(plain, list):
        plain = [plain]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in plain:
        # A 1-D prediction is a column: one value per line, as SageMaker's containers write it.
        writer.writerow(row if isinstance(row, list) else [row])
    return out.getvalue().encode("utf-8")


def encode_npy(value):
    numpy = np()
    buf = io.BytesIO()
    numpy.save(buf, numpy.asarray(value) if hasattr(value, "__array__") else numpy.asarray(to_plain(value)), allow_pickle=False)
    return buf.getvalue()


ENCODERS = {JSON: encode_json, CSV: encode_csv, NPY: encode_npy}


def encode(value, content_type):
    from .errors import UnsupportedAccept

    enc = ENCODERS.get(media_type(content_type))
    if enc is None:
        raise UnsupportedAccept(content_type, ENCODABLE)
    return enc(value)


def encode_first(value, accept):
    """The toolkit's default_output_fn: the first supported type ``accept`` names -> (body, type)."""
    from .errors import UnsupportedAccept

    for kind in split_accept(accept):
        enc = ENCODERS.get(kind)
        if enc is not None:
            return enc(value), kind
    raise UnsupportedAccept(accept, ENCODABLE)

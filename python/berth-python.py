"""berth's Python container: ``<python> berth-python.py [--framework NAME] [--install-requirements] serve``.

The file name has a hyphen so that no user module can import it by accident; the package it runs
is berth_python, beside it.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path[0] != HERE:
    sys.path.insert(0, HERE)

from berth_python.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

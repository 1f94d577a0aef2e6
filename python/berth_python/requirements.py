"""``code/requirements.txt``, installed only when the operator enabled it.

berth leaves it off by default: installing runs pip — arbitrary code from the artifact's packages,
with network access — on the berth machine each time an instance starts, makes the served
environment depend on what an index holds that day, and adds minutes to every start. With the
setting on, packages go into a folder of the container's own, first on sys.path after code/.
"""
import os
import subprocess
import sys

from .frameworks import StartupError


def install_requirements(code_dir, target):
    req = os.path.join(code_dir, "requirements.txt")
    if not os.path.isfile(req):
        return
    os.makedirs(target, exist_ok=True)
    print("berth/python: installing code/requirements.txt into %s" % target, file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
           "--target", target, "-r", req]
    proc = subprocess.run(cmd, cwd=code_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.stdout:
        sys.stderr.write(proc.stdout)
        sys.stderr.flush()
    if proc.returncode != 0:
        last = [line for line in proc.stdout.splitlines() if line.strip()][-3:]
        raise StartupError("failed to install required packages: pip install -r code/requirements.txt exited with %d: %s"
                           % (proc.returncode, " | ".join(last)))
    sys.path.insert(0, target)


def note_skipped(code_dir):
    if os.path.isfile(os.path.join(code_dir, "requirements.txt")):
        print("berth/python: code/requirements.txt is not installed: berth's pythonInstallRequirements setting is off "
              "(the packages must already be importable by this Python).", file=sys.stderr, flush=True)

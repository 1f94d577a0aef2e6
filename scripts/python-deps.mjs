#!/usr/bin/env node
// Makes sure the Python packages the Python container's tests need are installed, before the tests
// run (`npm test` runs this first): scikit-learn and torch (CPU) in `python3`, from the machine's
// package index; xgboost in Debian's /usr/bin/python3, from Debian's packages (python3-xgboost; pip's
// indexes here have no xgboost). The versions are the ones test/fixtures/python/make_models.py made
// the fixtures with. Anything that cannot be installed fails with the reason: no test is skipped.
import { spawnSync } from 'node:child_process';

const SKLEARN = '1.9.1';
const TORCH = '2.13.0';
// pip's public index is unreachable here and slow to time out: name the machine's own indexes.
const PIP_INDEX = ['--index-url', 'file:///opt/pypi/simple', '--extra-index-url', 'file:///opt/pypi-more/simple', '--find-links', '/opt/wheels'];

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

function fail(message) {
  console.error(`python-deps: ${message}`);
  process.exit(1);
}

function check(python, code) {
  const r = run(python, ['-c', code]);
  if (r.error) return `${python} cannot run: ${r.error.message}`;
  return r.status === 0 ? undefined : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`);
}

// Versions from the installed packages' metadata: importing torch alone takes seconds.
const probe = `from importlib.metadata import version
for name in ("numpy", "joblib", "scikit-learn", "torch"):
    version(name)
assert version("scikit-learn") == "${SKLEARN}", "scikit-learn " + version("scikit-learn") + " is not ${SKLEARN}"
assert version("torch").split("+")[0] == "${TORCH}", "torch " + version("torch") + " is not ${TORCH}"`;
const missing = check('python3', probe);
if (missing) {
  console.error(`python-deps: python3 lacks the test packages (${missing}); installing scikit-learn==${SKLEARN} and torch==${TORCH} (CPU)…`);
  const pip = run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...PIP_INDEX, `scikit-learn==${SKLEARN}`, `torch==${TORCH}`], { stdio: 'inherit' });
  if (pip.status !== 0) fail(`pip could not install scikit-learn==${SKLEARN} and torch==${TORCH} into python3 (exit ${pip.status}); the Python container's tests need them.`);
  const still = check('python3', probe);
  if (still) fail(`python3 still cannot import the test packages after installing them: ${still}`);
}

const XGB_PROBE = 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("xgboost") and u.find_spec("numpy") else "no module named xgboost or numpy")';
const noXgb = check('/usr/bin/python3', XGB_PROBE);
if (noXgb) {
  console.error(`python-deps: /usr/bin/python3 has no xgboost (${noXgb}); installing Debian's python3-xgboost…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = run('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  if (update.error || update.status !== 0) fail(`apt-get update failed (${update.error?.message ?? `exit ${update.status}`}); the XGBoost framework-mode test needs python3-xgboost.`);
  const install = run('apt-get', ['install', '-y', '-qq', 'python3-xgboost'], { stdio: 'inherit', env });
  if (install.status !== 0) fail(`apt-get install python3-xgboost failed (exit ${install.status}); the XGBoost framework-mode test needs it.`);
  const still = check('/usr/bin/python3', 'import xgboost, numpy');
  if (still) fail(`/usr/bin/python3 still cannot import xgboost: ${still}`);
}

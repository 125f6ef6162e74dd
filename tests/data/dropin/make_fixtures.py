"""Run the reference-style scripts of ``user_scripts.py`` with bob.learn.em 3.3.1 and store
their results in ``results.npz`` (keys ``<script>/<result>``), and the calls of
``error_cases.py`` with what each raised (the exception's class name, or ``OK``) in
``outcomes.json``, for ``tests/core/test_dropin_scripts.py``.  Run with the reference's
interpreter::

    cd /tmp && /work/refenv/bin/python /work/wt-dropin/tests/data/dropin/make_fixtures.py
"""

import json
import pathlib
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")  # (the reference's FutureWarnings from scikit-learn/dask)

import bob.learn.em  # noqa: E402

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

import error_cases  # noqa: E402
import user_scripts  # noqa: E402


def outcome(call):
    try:
        call()
    except Exception as error:  # (what the reference raised is the point)
        return type(error).__name__
    return "OK"


def main():
    results = {}
    for script in user_scripts.SCRIPTS:
        for key, value in script(bob.learn.em).items():
            results[f"{script.__name__}/{key}"] = np.asarray(value, dtype=np.float64)
    np.savez_compressed(HERE / "results.npz", **results)
    print(f"wrote {len(results)} arrays to {HERE / 'results.npz'}")
    outcomes = {name: outcome(call) for name, call in error_cases.cases(bob.learn.em).items()}
    (HERE / "outcomes.json").write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(outcomes)} outcomes to {HERE / 'outcomes.json'}")


if __name__ == "__main__":
    main()

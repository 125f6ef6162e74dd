"""Run the reference-style scripts of ``user_scripts.py`` with bob.learn.em 3.3.1 and store
their results in ``results.npz`` (keys ``<script>/<result>``), for
``tests/core/test_dropin_scripts.py``.  Run with the reference's interpreter::

    cd /tmp && /work/refenv/bin/python /work/wt-dropin/tests/data/dropin/make_fixtures.py
"""

import pathlib
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")  # (the reference's FutureWarnings from scikit-learn/dask)

import bob.learn.em  # noqa: E402

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

import user_scripts  # noqa: E402


def main():
    results = {}
    for script in user_scripts.SCRIPTS:
        for key, value in script(bob.learn.em).items():
            results[f"{script.__name__}/{key}"] = np.asarray(value, dtype=np.float64)
    np.savez_compressed(HERE / "results.npz", **results)
    print(f"wrote {len(results)} arrays to {HERE / 'results.npz'}")


if __name__ == "__main__":
    main()

"""Train a 2-Gaussian GMM-UBM on the Old Faithful eruptions (272 x 2) and adapt it by MAP.

    python examples/old_faithful.py
"""

import numpy as np

from emkit import GMMMachine
from emkit.datasets import load_old_faithful

X = load_old_faithful()  # (272, 2): eruption duration (min), waiting time (min)
ubm = GMMMachine(2, update_variances=True, update_weights=True, convergence_threshold=1e-8,
                 random_state=0).fit(X)
print(f"UBM after {ubm.n_iter_} EM iterations")
print("weights  ", np.round(ubm.weights, 4))
print("means    ", np.round(ubm.means, 4).tolist())
print("variances", np.round(ubm.variances, 4).tolist())
print(f"average log-likelihood: {ubm.log_likelihood(X).mean():.6f}")

short = X[X[:, 0] < 3]  # the short eruptions only
client = GMMMachine(2, trainer="map", ubm=ubm, max_fitting_steps=1).fit(short)
print("MAP means adapted to short eruptions", np.round(client.means, 4).tolist())

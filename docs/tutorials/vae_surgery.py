"""Tutorial: ELBO surgery and posterior-collapse diagnostics of your own VAE.

Train a small VAE for a few hundred Adam steps, then take its average KL apart into
the mutual information I(n; z) and the marginal KL(q(z) || p(z)) (Hoffman & Johnson
2016), and look at each latent dimension: its KL and whether it is active (Burda et al.
2016). With ``ELBOLAB_DATA`` set the data are 2,000 binarized-MNIST training images;
without it, binary 8 x 8 images drawn from a model with two latent factors, so the
tutorial runs anywhere.
"""

import functools
import os

import numpy as np
import torch

from elbolab.diagnostics import active_units, collapsed_fraction, kl_per_dimension, surgery_model
from elbolab.models import VAE, train
from elbolab.objectives import elbo_loss

torch.manual_seed(0)  # nothing below uses the global RNG; this only pins torch's defaults
rng = np.random.default_rng(0)
N = 2000


def synthetic_images(n: int) -> np.ndarray:
    """Binary 8 x 8 images: a bar whose position and thickness are two latent factors."""
    rows = np.arange(8)[None, :]
    centre = rng.uniform(0, 7, size=(n, 1))
    width = rng.uniform(0.5, 2.5, size=(n, 1))
    on = np.abs(rows - centre) < width  # (n, 8): which rows the bar covers
    probs = np.where(on[:, :, None], 0.9, 0.05) * np.ones((1, 1, 8))
    return (rng.uniform(size=probs.shape) < probs).reshape(n, 64).astype(np.float32)


if os.environ.get("ELBOLAB_DATA"):
    from elbolab.data import load_binarized_mnist

    images = load_binarized_mnist(split="train")  # (50000, 784), sorted by class
    x = torch.from_numpy(images[rng.choice(len(images), N, replace=False)].astype(np.float32))
    source = "binarized MNIST (2,000 training images)"
else:
    x = torch.from_numpy(synthetic_images(N))
    source = "synthetic 8 x 8 bars (2,000 images)"

model = VAE(data_dim=x.shape[1], latent_dim=8, hidden=(128,), generator=0)
# 15 epochs of 20 minibatches: 300 Adam steps.
settings = dict(generator=0, epochs=15, batch_size=100, lr=3e-3, progress=False)
history = train(model, elbo_loss, x, **settings)

out = surgery_model(model, x, generator=0, n_samples=4, progress=False)
kl = kl_per_dimension(out["mu"], out["std"])  # (N, d) nats
units = active_units(out["mu"])

print(f"data: {source}")
first, last = history["train_loss"][0], history["train_loss"][-1]
print(f"training loss (nats per image): {first:.2f} -> {last:.2f}")
print(f"average ELBO          {out['average_elbo']:9.3f} nats per image")
print(f"  reconstruction      {out['average_reconstruction']:9.3f}")
print(f"  average KL          {out['average_kl']:9.3f}")
print(
    f"    = I(n; z)         {out['mutual_info']:9.3f} +- {out['se_mutual_info']:.3f}"
    f"  (at most log N = {out['log_n']:.3f})"
)
print(f"    + KL(q(z)||p(z))  {out['marginal_kl']:9.3f} +- {out['se_marginal_kl']:.3f}")
print("KL per dimension (mean over images):", np.round(kl.mean(0).numpy(), 3))
print(f"active units (Var E[z_i|x] > 0.01): {units['count']} of {model.latent_dim}")
print(f"collapsed fraction (eps = delta = 0.01): {collapsed_fraction(kl):.3f}")

# The same VAE trained on the beta-ELBO with beta = 4 pays four times for each nat of
# KL, and switches dimensions off: the usual route into posterior collapse.
heavy = VAE(data_dim=x.shape[1], latent_dim=8, hidden=(128,), generator=0)
beta4 = functools.partial(elbo_loss, beta=4.0)
train(heavy, beta4, x, **settings)
out4 = surgery_model(heavy, x, generator=0, n_samples=4, progress=False)
kl4 = kl_per_dimension(out4["mu"], out4["std"])
units4 = active_units(out4["mu"])
print(
    f"beta = 4: average KL {out4['average_kl']:.3f} = I {out4['mutual_info']:.3f}"
    f" + marginal KL {out4['marginal_kl']:.3f}; active units {units4['count']} of 8;"
    f" collapsed fraction {collapsed_fraction(kl4):.3f}"
)
print("beta = 4: KL per dimension:", np.round(kl4.mean(0).numpy(), 3))

# Fail loudly if the diagnostics disagree with each other or with the bounds they obey.
assert last < first, "training did not lower the loss"
# The per-dimension KLs sum to the analytic average KL of the surgery.
assert abs(float(kl.sum(1).mean()) - out["average_kl"]) < 1e-6 * max(1.0, out["average_kl"])
# average KL = I + marginal KL, up to the Monte Carlo error of the two estimates.
gap = out["average_kl"] - out["mutual_info"] - out["marginal_kl"]
assert abs(gap) < 4 * out["se_average_kl_mc"] + 1e-9, (gap, out["se_average_kl_mc"])
assert -1e-9 <= out["mutual_info"] <= out["log_n"] + 4 * out["se_mutual_info"]
assert out["marginal_kl"] > -4 * out["se_marginal_kl"]
assert 1 <= units["count"] <= model.latent_dim
# The KL weight lowers the KL the model keeps (the point of beta > 1).
assert out4["average_kl"] < out["average_kl"], (out4["average_kl"], out["average_kl"])
# An inactive unit carries (almost) no information: its mean KL is small.
inactive = ~units["active"]
if inactive.any():
    assert float(kl.mean(0)[inactive].max()) < 0.5, kl.mean(0)

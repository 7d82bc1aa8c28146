"""The published test NLLs the ``zoo`` study compares with, and what each was measured on."""

# Published test NLLs on MNIST (nats), each with what it was measured on: the
# binarization (the fixed one of Larochelle & Murray 2011, which this study uses, or a
# dynamic one, redrawn every epoch, whose NLLs run about 2 nats lower: Burda et al.
# 2016, README of github.com/yburda/iwae) and the estimator.
PUBLISHED = {
    "vae": {
        "nll": 89.9,
        "source": "Rezende & Mohamed 2015, Table 2: VAE with a diagonal Gaussian posterior",
        "binarization": "not stated in a source we could read",
        "estimator": "a variational bound (-ELBO), not importance sampling",
    },
    "iwae_k50": {
        "nll": 87.1,
        "source": "Burda et al. 2016, appendix D: IWAE k = 50, one stochastic layer of 50 "
        "latents behind two tanh layers of 200, 3280 epochs (their Table 1 gives 84.78 "
        "for the same model on dynamically binarized MNIST)",
        "binarization": "fixed (Larochelle & Murray), as here",
        "estimator": "importance sampling, k = 5000",
    },
    "vamp": {
        "nll": 85.57,
        "source": "Tomczak & Welling 2018: VampPrior K = 500, one stochastic layer of 40 "
        "latents, gated MLPs of 300 units, KL warm-up over 100 epochs",
        "binarization": "not determined (the authors' code supports both)",
        "estimator": "importance sampling, k = 5000",
    },
}

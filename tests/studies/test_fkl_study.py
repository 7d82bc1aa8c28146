"""The ``fkl`` study end to end with its smoke preset, and its simulators."""

import json
import math
import os
from pathlib import Path

import pytest
import torch

from elbolab import cli
from elbolab.models.simulators import ConjugateGaussian, RotatedDigits, ShiftedMixture, rotate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    out = tmp_path_factory.mktemp("fkl") / "run"
    assert (
        cli.main(["run", "fkl", "--preset", "smoke", "--out", str(out), "--scheduler", "serial"])
        == 0
    )
    return out, json.loads((out / "metrics.json").read_text())


def test_metrics_carry_the_required_keys(smoke_run):
    out, m = smoke_run
    for obj in ("fkl", "elbo"):
        assert 0.0 <= m["clustering"]["ordered_rate"][obj] <= 1.0
    assert 0.0 <= m["rotated"]["final_angle_error_deg"]["fkl"] <= 180.0
    assert len(m["rotated"]["final_angle_deg"]["iwbo"]) == 12
    for gaps in m["width"]["final_nll_gap"].values():
        # The gap is an expected KL: non-negative up to the test-set noise.
        assert gaps["network"] > -0.05 and gaps["linearized"] > -0.05
    for name in ("width", "clustering_shift", "rotated_angles", "rotated_kl"):
        assert (out / "figures" / f"{name}.png").is_file()


def test_conjugate_gaussian_posterior_is_exact():
    model = ConjugateGaussian(seed=1)
    z, x = model.simulate(torch.Generator().manual_seed(0), 3)
    # Posterior by brute force: precision I + A^T A / sigma^2.
    a = model.A
    prec = torch.eye(2, dtype=torch.float64) + a.T @ a / model.sigma**2
    cov = torch.linalg.inv(prec)
    mean = x @ a @ cov / model.sigma**2
    assert torch.allclose(cov, torch.diag(model.posterior_var), atol=1e-12)
    assert torch.allclose(model.posterior_mean(x), mean, atol=1e-12)


def test_shifted_mixture_log_joint_matches_a_direct_sum():
    model = ShiftedMixture(n_obs=7)
    z, x = model.simulate(torch.Generator().manual_seed(0), 2)
    direct = []
    for zi, xi in zip(z, x, strict=True):
        total = torch.distributions.Normal(0.0, 100.0).log_prob(zi[0])
        for k in range(5):
            total += torch.distributions.Normal(zi[0] + model.offsets[k], 0.5).log_prob(zi[1 + k])
        for xn in xi:
            comp = torch.distributions.Normal(zi[1:], 0.1).log_prob(xn)
            total += torch.logsumexp(comp, 0) - math.log(5)
        direct.append(total)
    assert torch.allclose(model.log_joint(z, x), torch.stack(direct))


def test_rotation_is_counterclockwise_and_posterior_peaks_at_the_truth():
    image = torch.zeros(1, 28, 28)
    image[0, 14, 24] = 1.0  # right of the centre
    turned = rotate(image, torch.tensor([math.pi / 2]))[0, 0]
    row, col = divmod(int(turned.argmax()), 28)
    assert row < 8 and abs(col - 14) <= 1  # now above the centre
    templates = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(0))
    model = RotatedDigits(templates, sigma=0.3)
    x = model.observe(torch.Generator().manual_seed(1), torch.tensor([math.radians(100.0)]))[0]
    post = model.posterior_grid(x, 720)
    assert float(post["log_density"].exp().sum() * post["step"]) == pytest.approx(1.0)
    mode = math.degrees(float(post["theta"][post["log_density"].argmax()]))
    assert abs(mode - 100.0) <= 1.0

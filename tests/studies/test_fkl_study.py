"""The ``fkl`` study end to end with its smoke preset (on a tiny fake MNIST, always, and
on the MNIST mirror), and its simulators."""

import math

import numpy as np
import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.models.simulators import ConjugateGaussian, RotatedDigits, ShiftedMixture, rotate
from elbolab.studies import fkl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["tiny", "real"])
def smoke_run(request, smoke_runs):
    return smoke_runs("fkl", request.param)


def test_metrics_carry_the_required_keys(smoke_run, assert_finite):
    out, m = smoke_run
    assert_finite(m)
    cfg = fkl.PRESETS["smoke"]
    bw = m["width"]["by_width"]
    assert set(bw) == {str(w) for w in cfg.width_widths}
    arrays = np.load(out / "arrays.npz")
    for w, row in bw.items():
        assert len(row["per_seed"]["gap_network"]) == cfg.width_seeds
        for kind in ("network", "linearized"):
            # The gap is an expected KL: non-negative up to the test-set noise.
            assert row[f"gap_{kind}"]["min"] > -0.05
            # The summary is the mean over the seeds of each seed's last evaluation.
            finals = [
                arrays[f"width_{w}_seed{rep}_nll_gap_{kind}"][-1] for rep in range(cfg.width_seeds)
            ]
            assert row[f"gap_{kind}"]["mean"] == pytest.approx(np.mean(finals))
        # Centred networks start at q = N(0, I): the same gap for every width and seed.
        for rep in range(cfg.width_seeds):
            assert arrays[f"width_{w}_seed{rep}_nll_gap_network"][0] == pytest.approx(
                row["start_gap"], rel=1e-12
            )
        assert row["kl_network_linearized"]["min"] >= 0
        assert row["ntk_drift"]["min"] >= 0
    assert [c["verdict"] for c in m["claims"]] == [
        c.verdict for c in fkl.claims(cfg, {k: v for k, v in m.items() if k != "claims"})
    ]
    assert m["rotated"]["n_images"] == cfg.rotated_n_images
    for name in ("width", "clustering_shift", "rotated_angles", "rotated_kl"):
        assert (out / "figures" / f"{name}.png").is_file()


def test_clustering_rates_follow_from_the_modes(smoke_run):
    out, m = smoke_run
    c = m["clustering"]
    r = fkl.PRESETS["smoke"].cluster_replicates
    assert c["replicates"] == r
    # The headline is the natural parameterization.
    assert c["ordered_rate"] == c["ordered_rate_by_parameterization"]["natural"]
    assert c["recovered_rate"] == c["recovered_rate_by_parameterization"]["natural"]
    arrays = np.load(out / "arrays.npz")
    for kind in ("mean", "natural"):
        for obj in ("fkl", "elbo"):
            # Recount from the saved posterior modes of every replicate: ordered means the
            # five centres increase; recovered, ordered with the shift within tolerance.
            centres = arrays[f"cluster_{obj}_{kind}_centre_mode"]
            shift = arrays[f"cluster_{obj}_{kind}_shift_mode"]
            assert centres.shape == (r, 5) and shift.shape == (r,)
            ordered = (np.diff(centres, axis=1) > 0).all(axis=1)
            np.testing.assert_array_equal(arrays[f"cluster_{obj}_{kind}_ordered"], ordered)
            recovered = ordered & (np.abs(shift - 100.0) < c["shift_tolerance"])
            assert c["ordered_rate_by_parameterization"][kind][obj] == ordered.mean()
            assert c["recovered_rate_by_parameterization"][kind][obj] == recovered.mean()
            d = c["diagnostics"][kind][obj]
            assert d["median_shift_error"] == pytest.approx(np.median(np.abs(shift - 100.0)))
            sds = arrays[f"cluster_{obj}_{kind}_shift_sd"]
            assert d["median_shift_sd"] == pytest.approx(np.median(sds))
            if kind == "mean":  # the mean-only family's sd is fixed at 1 unit
                np.testing.assert_allclose(sds, 1.0, rtol=1e-12)


def test_rotated_angles_errors_and_kls(smoke_run):
    out, m = smoke_run
    rot = m["rotated"]
    truth = rot["true_angle_deg"]
    assert truth == fkl.PRESETS["smoke"].rotated_true_deg
    assert rot["start_angle_deg"] == [30.0 * i for i in range(12)]
    finals = {"fkl": [rot["final_angle_deg"]["fkl"]], "iwbo": rot["final_angle_deg"]["iwbo"]}
    errors = {
        "fkl": [rot["final_angle_error_deg"]["fkl"]],
        "iwbo": rot["final_angle_error_deg"]["iwbo"],
    }
    assert len(finals["iwbo"]) == len(errors["iwbo"]) == 12
    for method in finals:
        for angle, error in zip(finals[method], errors[method], strict=True):
            assert 0.0 <= angle < 360.0
            # The error is the shorter way round the circle from the angle to the truth:
            # rotating the estimate by it (one way or the other) lands on the truth.
            assert 0.0 <= error <= 180.0
            assert min(
                abs(math.remainder(angle + error - truth, 360.0)),
                abs(math.remainder(angle - error - truth, 360.0)),
            ) == pytest.approx(0.0, abs=1e-9)
            assert error == pytest.approx(abs(math.remainder(angle - truth, 360.0)), abs=1e-9)
    for kl in ("final_forward_kl", "final_reverse_kl"):
        # KL divergences between normalized densities on the grid (quadrature error aside).
        assert rot[kl]["fkl"] >= -1e-6
        assert min(rot[kl]["iwbo"]) >= -1e-6
    arrays = np.load(out / "arrays.npz")
    grid = arrays["rotated_grid_deg"]
    log_p = arrays["rotated_log_posterior"]
    step = math.radians(360.0 / len(grid))
    # The exact posterior is a density on the circle, and its mode is the reported one.
    assert np.exp(log_p).sum() * step == pytest.approx(1.0, rel=1e-6)
    assert rot["posterior_mode_deg"] == pytest.approx(grid[np.argmax(log_p)])
    assert arrays["rotated_iwbo_angle_deg"][-1].tolist() == rot["final_angle_deg"]["iwbo"]


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


# --------------------------------------------------------------------------- devices

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "timings"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto means CUDA here")
def test_device_cpu_is_the_default_without_cuda(smoke_runs):
    _, default = smoke_runs("fkl", "tiny")
    out, cpu = smoke_runs("fkl", "tiny", "device=cpu")
    assert cpu["device"] == default["device"] == "cpu"
    assert _without_timings(cpu) == _without_timings(default)
    arrays = np.load(out / "arrays.npz")
    default_arrays = np.load(smoke_runs("fkl", "tiny")[0] / "arrays.npz")
    assert sorted(arrays.files) == sorted(default_arrays.files)
    for key in arrays.files:
        np.testing.assert_array_equal(arrays[key], default_arrays[key])


def test_device_setting_is_checked():
    assert fkl.Config().device == "auto"
    fkl.Config(device="cpu").validate()
    with pytest.raises(ConfigError, match="device"):
        fkl.Config(device="tpu").validate()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_config_error():
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match="CUDA") as err:
            fkl.Config(device=spec).validate()
        assert "\n" not in str(err.value)


def _simulate_all(gen_device: str):
    """Draws of every simulator (and their densities) from generators on gen_device."""
    templates = torch.rand(2, 28, 28, generator=torch.Generator().manual_seed(0))

    def gen(seed):
        return torch.Generator(device=gen_device).manual_seed(seed)

    gauss, mix = ConjugateGaussian(seed=1), ShiftedMixture(n_obs=7)
    digits = RotatedDigits(templates, sigma=0.3)
    z, x = gauss.simulate(gen(0), 4)
    zm, xm = mix.simulate(gen(1), 3)
    theta, xr = digits.simulate(gen(2), 2)
    _, xs = mix.simulate_given_shift(gen(3), torch.tensor([100.0, -50.0], dtype=torch.float64))
    post = digits.posterior_grid(xr[0], 36)
    return {
        "gauss_z": z,
        "gauss_x": x,
        "gauss_nll": gauss.posterior_nll(z, x),
        "mix_z": zm,
        "mix_x": xm,
        "mix_given_x": xs,
        "mix_log_joint": mix.log_joint(zm, xm),
        "digits_theta": theta,
        "digits_x": xr,
        "digits_log_joint": digits.log_joint(theta, xr[1]),
        "digits_posterior": post["log_density"],
    }


def test_simulators_draw_on_the_cpu_from_a_cpu_generator():
    out = _simulate_all("cpu")
    assert all(t.device.type == "cpu" for t in out.values())
    # The same draws as from a default generator (what the study always used).
    z, x = ConjugateGaussian(seed=1).simulate(torch.Generator().manual_seed(0), 4)
    assert torch.equal(z, out["gauss_z"]) and torch.equal(x, out["gauss_x"])
    zm, xm = ShiftedMixture(n_obs=7).simulate(torch.Generator().manual_seed(1), 3)
    assert torch.equal(zm, out["mix_z"]) and torch.equal(xm, out["mix_x"])


@needs_cuda
def test_simulators_draw_on_cuda_from_a_cuda_generator():
    out = _simulate_all("cuda")
    assert all(t.device.type == "cuda" for t in out.values())
    for t in out.values():
        assert bool(torch.isfinite(t).all())
    # The densities agree with the CPU's on the same (moved) draws.
    gauss, mix = ConjugateGaussian(seed=1), ShiftedMixture(n_obs=7)
    z, x = out["gauss_z"].cpu(), out["gauss_x"].cpu()
    assert torch.allclose(out["gauss_nll"].cpu(), gauss.posterior_nll(z, x))
    zm, xm = out["mix_z"].cpu(), out["mix_x"].cpu()
    assert torch.allclose(out["mix_log_joint"].cpu(), mix.log_joint(zm, xm))


@needs_cuda
def test_smoke_run_on_cuda(smoke_runs, assert_finite):
    out, m = smoke_runs("fkl", "tiny", "device=cuda")
    assert m["device"].startswith("cuda")
    assert_finite(m)
    arrays = np.load(out / "arrays.npz")  # plain numpy: loads without a GPU
    assert arrays["rotated_iwbo_angle_deg"].shape[1] == 12

"""One notion of device: checks.device, checks.torch_generator, and the rules the
library, the trainer, the studies and the CLI build on them. CI has no GPU: the CUDA
cases are skipped with a reason where CUDA is missing, and the refusals are tested."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from elbolab import checks, studies
from elbolab.cli import main
from elbolab.cluster import DaskDispatcher, Serial, make_dispatcher
from elbolab.errors import ConfigError, DataError, NumericalError
from elbolab.models import VAE, LinearVAE, train
from elbolab.models.trainer import CHECKPOINT_NAME
from elbolab.objectives import ELBOObjective, elbo, elbo_loss, iwae_loss
from elbolab.studies import lda, linear, surgery, vae_runs, zoo

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal without CUDA")


def test_device_names():
    assert checks.device("cpu") == torch.device("cpu")
    assert checks.device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert checks.device("auto").type == expected
    assert checks.device(" AUTO ").type == expected
    for bad in ("tpu", "", None, 3.5, "cuda:x"):
        with pytest.raises(ConfigError, match="must be auto, cpu, cuda or cuda:N"):
            checks.device(bad, "device")


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_one_clear_error(spec):
    with pytest.raises(ConfigError, match=r"--device=cuda.*sees no GPU"):
        checks.device(spec, "--device")


def test_a_seed_becomes_a_generator_on_the_device():
    g = checks.torch_generator(5, device="cpu")
    assert g.device.type == "cpu"
    assert torch.equal(
        torch.rand(3, generator=g), torch.rand(3, generator=checks.torch_generator(5))
    )
    given = torch.Generator()
    assert checks.torch_generator(given) is given


def test_none_is_refused_everywhere():
    with pytest.raises(ConfigError, match="generator must be a torch.Generator or an integer seed"):
        checks.torch_generator(None)
    model = VAE(6, 2, hidden=(4,), generator=0)
    x = torch.rand(3, 6).round()
    with pytest.raises(TypeError):
        elbo(model, x)  # the generator is a required argument
    with pytest.raises(ConfigError, match="got None"):
        elbo(model, x, None)


def test_mismatched_devices_name_both():
    with pytest.raises(ConfigError, match=r"the generator is on cuda:0 but q\(z \| x\) is on cpu"):
        checks.same_device(torch.device("cuda:0"), "the generator", torch.device("cpu"), "q(z | x)")
    checks.same_device(torch.device("cpu"), "a", torch.device("cpu"), "b")


@needs_cuda
def test_a_cuda_generator_with_a_cpu_model_is_refused():
    model = VAE(6, 2, hidden=(4,), generator=0)
    gen = torch.Generator(device="cuda")
    with pytest.raises(ConfigError, match="cuda.*cpu"):
        elbo(model, torch.rand(3, 6).round(), gen)
    with pytest.raises(ConfigError, match="cuda.*cpu"):
        VAE(6, 2, generator=gen)  # weights are drawn on the CPU


@needs_cuda
def test_the_library_follows_a_cuda_model():
    model = VAE(6, 2, hidden=(4,), generator=0).cuda()
    x = torch.rand(30, 6).round()
    out = elbo(model, x, 0)
    assert out["elbo"].device.type == "cuda"
    hist = train(model, elbo_loss, x, x, generator=1, epochs=2, batch_size=10, progress=False)
    assert len(hist["train_loss"]) == 2
    lin = LinearVAE(6, 2, device="cuda")
    assert lin.W.device.type == "cuda"


def test_a_seed_gives_the_same_initial_model_on_every_device():
    # Weights are drawn on the CPU and moved: the seed decides the model, not the device.
    a = VAE(6, 2, hidden=(4,), generator=3)
    b = VAE(6, 2, hidden=(4,), generator=3).to(checks.device("auto"))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb.cpu())


def test_trainer_kl_warmup_raises_beta_linearly_and_keeps_no_warmup_state():
    seen = []

    def loss(model, x, generator, beta=1.0):
        seen.append(beta)
        return elbo_loss(model, x, generator, beta=beta)

    model = VAE(6, 2, hidden=(4,), generator=0)
    x = torch.rand(20, 6).round()
    hist = train(
        model, loss, x, x, generator=1, epochs=5, batch_size=20, kl_warmup=4, progress=False
    )
    train_betas = [b for b in seen if b != 1.0]
    assert sorted(set(train_betas)) == [0.25, 0.5, 0.75]
    assert hist["best_epoch"] >= 3  # epochs at a KL weight below 1 are never the best


def test_trainer_kl_warmup_needs_a_loss_that_takes_beta():
    model = VAE(6, 2, hidden=(4,), generator=0)
    x = torch.rand(20, 6).round()
    with pytest.raises(ConfigError, match="kl_warmup needs a loss_fn that accepts beta"):
        train(model, functools.partial(iwae_loss, k=2), x, generator=1, epochs=1, kl_warmup=2)


def test_vae_runs_warmup_scales_the_specs_beta():
    loss = vae_runs.ModelSpec(2, (4,), objective=ELBOObjective(beta=4.0)).objective.loss
    model = VAE(6, 2, hidden=(4,), generator=0)
    x = torch.rand(5, 6).round()
    expected = elbo_loss(model, x, 0, beta=2.0)
    assert torch.equal(loss(model, x, 0, beta=0.5), expected)


def test_nll_images_all_on_a_gpu_a_subset_on_a_cpu():
    assert vae_runs.nll_images(None, 10000, torch.device("cpu")) == vae_runs.CPU_NLL_IMAGES
    assert vae_runs.nll_images(None, 10000, torch.device("cuda")) == 10000
    assert vae_runs.nll_images(20000, 10000, torch.device("cpu")) == 10000
    assert vae_runs.nll_images(50, 10000, torch.device("cuda")) == 50


def test_one_gpu_runs_local_units_one_after_another():
    assert isinstance(make_dispatcher("auto", on_gpu=True), Serial)
    assert isinstance(make_dispatcher("local:2", on_gpu=True), Serial)
    assert "GPU" in make_dispatcher("local", on_gpu=True).description
    assert isinstance(make_dispatcher("tcp://host:8786", on_gpu=True), DaskDispatcher)
    with pytest.raises(ConfigError, match="local:N needs N >= 1"):
        make_dispatcher("local:0", on_gpu=True)


def test_with_device_sets_the_torch_studies_and_guards_the_cpu_ones():
    for study in (surgery, zoo, linear):
        assert studies.with_device(study, study.PRESETS["smoke"], "cpu").device == "cpu"
    assert studies.with_device(lda, lda.PRESETS["smoke"], "auto") == lda.PRESETS["smoke"]
    assert studies.with_device(lda, lda.PRESETS["smoke"], "cpu") == lda.PRESETS["smoke"]


@no_cuda
def test_cli_device_cuda_without_a_gpu_exits_2_with_one_line(capsys, tmp_path):
    for study in ("zoo", "lda"):
        code = main(
            ["run", study, "--preset", "smoke", "--device", "cuda", "--out", str(tmp_path / study)]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "cuda" in err[0], err
        assert not (tmp_path / study).exists()


@needs_cuda
def test_cli_device_cuda_on_a_cpu_study_is_refused(capsys, tmp_path):
    code = main(
        ["run", "lda", "--preset", "smoke", "--device", "cuda", "--out", str(tmp_path / "x")]
    )
    assert code == 2 and "computes on the CPU" in capsys.readouterr().err


@needs_cuda
def test_a_gpu_training_resumes_from_its_checkpoint_exactly(tmp_path):
    x = torch.rand(60, 6).round()

    def run(epochs, folder):
        model = VAE(6, 2, hidden=(4,), generator=0).cuda()
        hist = train(
            model,
            elbo_loss,
            x,
            x,
            generator=1,
            epochs=epochs,
            batch_size=20,
            checkpoint=folder,
            progress=False,
        )
        return model, hist

    whole, hist = run(4, tmp_path / "whole")
    run(2, tmp_path / "split")
    resumed, hist2 = run(4, tmp_path / "split")
    assert hist2["resumed_from"] == 2 and hist2["train_loss"] == hist["train_loss"]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_value_checks_can_be_turned_off_and_shapes_are_still_checked():
    x = torch.tensor([[1.0, float("nan")]])
    with checks.value_checks(False):
        assert not checks.value_checks_enabled()
        checks.data_matrix(x, "x")  # a GPU loop checks its losses instead
        with pytest.raises(DataError, match="columns"):
            checks.data_matrix(x, "x", width=3)
    assert checks.value_checks_enabled()
    with pytest.raises(DataError, match="NaN or infinite"):
        checks.data_matrix(x, "x")


def test_on_the_cpu_a_nan_loss_stops_training_before_it_reaches_the_weights():
    model = VAE(6, 2, hidden=(4,), generator=0)
    x = torch.rand(20, 6).round()
    calls = []

    def loss(model, xb, generator):
        calls.append(1)
        value = elbo_loss(model, xb, generator)
        return value * float("nan") if len(calls) == 3 else value

    with pytest.raises(NumericalError, match="epoch 0, minibatch 2"):
        train(model, loss, x, generator=1, epochs=1, batch_size=5, progress=False)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_a_checkpoint_from_another_device_is_refused_by_name(tmp_path):
    x = torch.rand(20, 6).round()
    model = VAE(6, 2, hidden=(4,), generator=0)
    train(
        model,
        elbo_loss,
        x,
        generator=1,
        epochs=1,
        batch_size=10,
        checkpoint=tmp_path,
        progress=False,
    )
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    assert state["device"] == "cpu"
    state["device"] = "cuda"
    torch.save(state, path)
    with pytest.raises(DataError, match="written by a run on cuda and this model is on cpu"):
        train(
            model,
            elbo_loss,
            x,
            generator=1,
            epochs=2,
            batch_size=10,
            checkpoint=tmp_path,
            progress=False,
        )


def test_data_on_another_device_than_the_model_is_refused():
    model = VAE(6, 2, hidden=(4,), generator=0)
    # A meta tensor has no values to test; only its device is looked at.
    with (
        checks.value_checks(False),
        pytest.raises(ConfigError, match="x is on meta but the model is on cpu"),
    ):
        elbo(model, torch.empty(3, 6, device="meta"), 0)


def test_a_run_records_the_device_it_resolved_to(tmp_path, tiny_data):
    cfg = studies.apply_overrides(surgery.PRESETS["smoke"], ["epochs=1", "latents=2"])
    assert cfg.device == "auto"
    studies.run_study(surgery, cfg, tmp_path / "run", data_root=tiny_data.root)
    resolved = checks.device("auto").type
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"]["device"] == resolved
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["device"] == resolved
    assert sorted(p.name for p in (tmp_path / "run" / "models").iterdir()) == ["d2.pt"]
    # Resuming with "auto" on the same machine is the same run.
    studies.run_study(surgery, cfg, tmp_path / "run", data_root=tiny_data.root, resume=True)


def test_the_gpu_loop_reading_losses_every_few_steps_gives_the_cpu_loop_numbers(monkeypatch):
    # The buffered path a GPU takes, run on the CPU: the same history, and a NaN named at
    # its minibatch.
    from elbolab.models import trainer

    x = torch.rand(70, 6).round()

    def run(loss=elbo_loss):
        model = VAE(6, 2, hidden=(4,), generator=0)
        return train(model, loss, x, x, generator=1, epochs=3, batch_size=10, progress=False)

    every_step = run()
    monkeypatch.setattr(trainer, "_sync_every", lambda device: 3)
    buffered = run()
    assert buffered["train_loss"] == pytest.approx(every_step["train_loss"], rel=1e-12)
    assert buffered["valid_loss"] == every_step["valid_loss"]

    calls = []

    def nan_at_five(model, xb, generator):
        calls.append(1)
        value = elbo_loss(model, xb, generator)
        return value * float("nan") if len(calls) == 5 else value

    with pytest.raises(NumericalError, match="epoch 0, minibatch 4"):
        run(nan_at_five)

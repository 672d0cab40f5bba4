"""Energy networks (ggcn.models.nets): every energy maps (B, ...) to (B,)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ggcn.models.nets import LEAKY_SLOPE, ConvEnergy, FilterBank, FrameEnergy, MLPEnergy, gabor_dog_bank


@pytest.mark.parametrize(("size", "widths"), [(16, [5, 10]), (32, [5, 10, 20]), (64, [5, 10, 20, 40]),
                                              (128, [5, 10, 20, 40, 80])])
def test_convnet_halves_the_side_down_to_4x4_while_doubling_the_channels(size, widths):
    net = ConvEnergy(2, size, width=5)
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == widths
    assert all((c.kernel_size, c.stride) == ((4, 4), (2, 2)) for c in convs)
    assert all(m.negative_slope == LEAKY_SLOPE == 0.02 for m in net.body if isinstance(m, nn.LeakyReLU))
    assert net.head.kernel_size == (4, 4) and net.head.out_channels == 1
    x = torch.zeros(3, 2, size, size)
    assert net(x).shape == (3,)
    assert net.responses(x).shape == (3, 5)


def test_at_8_px_a_3x3_convolution_comes_before_the_one_halving_step():
    net = ConvEnergy(1, 8, width=5)
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(5, (3, 3), (1, 1)), (10, (4, 4), (2, 2))]
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3,)
    shallow = ConvEnergy(1, 8, width=5, min_convs=1)  # the conditional synthesizer's body (LabelEnergy)
    assert [(c.out_channels, c.stride) for c in shallow.body if isinstance(c, nn.Conv2d)] == [(5, (2, 2))]
    assert all(isinstance(c, nn.Conv2d) and c.stride == (2, 2) for c in ConvEnergy(1, 16, width=5).body[::2])


def test_convnet_energy_is_piecewise_linear_in_x():
    """Leaky ReLUs make the Hessian of f vanish almost everywhere (what Remark 2 relies on)."""
    torch.manual_seed(0)
    net = ConvEnergy(1, 16, width=4)
    x = torch.randn(2, 1, 16, 16, requires_grad=True)
    grad = torch.autograd.grad(net(x).sum(), x, create_graph=True)[0]
    hvp = torch.autograd.grad((grad * torch.randn_like(x)).sum(), x, allow_unused=True, retain_graph=True)[0]
    assert hvp is None or torch.equal(hvp, torch.zeros_like(x))
    theta_grad = torch.autograd.grad(grad.pow(2).sum(), list(net.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in theta_grad)  # but ∇_x f depends on θ


def test_gabor_dog_bank_is_zero_mean_and_unit_norm():
    bank = gabor_dog_bank(size=7, n_orient=4, scales=(1.0, 2.0))
    assert bank.shape == (2 * (2 * 4 + 1), 1, 7, 7)  # per scale: a cos/sin pair per orientation + one DoG
    flat = bank.flatten(1).double()
    assert torch.allclose(flat.mean(1), torch.zeros(len(bank), dtype=torch.float64), atol=1e-6)
    assert torch.allclose(flat.norm(dim=1), torch.ones(len(bank), dtype=torch.float64), atol=1e-5)


def test_filter_bank_filters_each_colour_channel_separately():
    bank = gabor_dog_bank()
    fb = FilterBank(bank, channels=3)
    x = torch.randn(2, 3, 12, 12)
    out = fb(x)
    k = len(bank)
    assert out.shape == (2, 3 * k, 12, 12)
    for c in range(3):
        alone = F.conv2d(x[:, c : c + 1], bank, padding=bank.shape[-1] // 2)
        assert torch.allclose(out[:, c * k : (c + 1) * k], alone, atol=1e-5)
    assert [n for n, _ in fb.named_parameters()] == []


def test_frame_energy_is_a_weighted_sum_of_rectified_filter_responses():
    torch.manual_seed(0)
    fb = FilterBank(gabor_dog_bank(), channels=1)
    energy = FrameEnergy(fb, channels=1, image_size=10)
    x = torch.randn(4, 1, 10, 10)
    assert torch.equal(energy(x), torch.zeros(4))  # θ = 0: the Gaussian reference itself
    with torch.no_grad():
        energy.theta.copy_(torch.randn_like(energy.theta))
    expected = torch.stack([(energy.theta[:, None, None] * torch.relu(fb(xi[None])[0])).sum() for xi in x])
    assert torch.allclose(energy(x), expected, rtol=1e-4, atol=1e-4)
    assert energy.responses(x).shape == (4, len(energy.theta))


def test_position_frame_weighs_every_filter_at_every_pixel():
    torch.manual_seed(0)
    fb = FilterBank(gabor_dog_bank(), channels=1)
    energy = FrameEnergy(fb, channels=1, image_size=10, weights="position")
    x = torch.randn(4, 1, 10, 10)
    assert energy.theta.shape == fb(x).shape[1:] and torch.equal(energy(x), torch.zeros(4))
    with torch.no_grad():
        energy.theta.copy_(torch.randn_like(energy.theta))
    expected = torch.stack([(energy.theta * torch.relu(fb(xi[None])[0])).sum() for xi in x])
    assert torch.allclose(energy(x), expected, rtol=1e-4, atol=1e-4)
    top, bottom = torch.zeros(2, 1, 1, 24, 24)  # one blob, far enough from the border for 7×7 filters
    top[..., 6:8, 10:12], bottom[..., 16:18, 10:12] = 1.0, 1.0
    stationary, energy = (FrameEnergy(fb, channels=1, image_size=24, weights=w) for w in ("stationary", "position"))
    with torch.no_grad():
        stationary.theta.fill_(1.0)
        energy.theta.copy_(torch.randn_like(energy.theta))
    assert torch.allclose(stationary(top), stationary(bottom))  # one θ_k: only a texture, blind to where
    assert not torch.allclose(energy(top), energy(bottom))  # θ_{k,pixel}: the same blob scores by its place
    with pytest.raises(ValueError, match="FRAME weights"):
        FrameEnergy(fb, channels=1, image_size=10, weights="pixelwise")


def test_mlp_energy_maps_points_to_scalars():
    net = MLPEnergy(dim=2, hidden=8, depth=2)
    assert net(torch.randn(7, 2)).shape == (7,)
    assert sum(isinstance(m, nn.Linear) for m in net.net) == 3

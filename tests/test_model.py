import pytest
import torch
from torch import nn

from dae_utils.batchnorm import batch_norm_2d
from dae_utils.model import (
    Decoder,
    Encoder,
    conv_output_size,
    count_parameters,
    format_layer_table,
    layer_table,
)


def conv(cin, cout):  # weights + biases of a 3x3 (transposed) convolution
    return cin * cout * 9 + cout


def linear(nin, nout):
    return nin * nout + nout


def test_conv_output_size_formula_and_the_padding_inconsistency():
    assert conv_output_size(28, 3, 2, 1) == 14
    assert conv_output_size(14, 3, 2, 1) == 7
    assert conv_output_size(7, 3, 2, 0) == 3
    assert conv_output_size(7, 3, 2, 1) == 4  # the assignment's "padding 1 everywhere" would give 4x4


def test_encoder_shape_after_every_layer():
    rows = layer_table(Encoder(latent_dim=4), (2, 1, 28, 28))
    shapes = [(r.kind, r.output_shape) for r in rows]
    assert shapes == [
        ("Conv2d", (2, 8, 14, 14)),
        ("ReLU", (2, 8, 14, 14)),
        ("Conv2d", (2, 16, 7, 7)),
        ("BatchNorm2d", (2, 16, 7, 7)),
        ("ReLU", (2, 16, 7, 7)),
        ("Conv2d", (2, 32, 3, 3)),  # the stated 3x3x32
        ("ReLU", (2, 32, 3, 3)),
        ("Flatten", (2, 288)),
        ("Linear", (2, 128)),
        ("ReLU", (2, 128)),
        ("Linear", (2, 4)),
    ]


def test_decoder_mirrors_the_encoder():
    rows = layer_table(Decoder(latent_dim=4), (2, 4))
    shapes = [(r.kind, r.output_shape) for r in rows]
    assert shapes == [
        ("Linear", (2, 128)),
        ("ReLU", (2, 128)),
        ("Linear", (2, 288)),
        ("ReLU", (2, 288)),
        ("Unflatten", (2, 32, 3, 3)),
        ("ConvTranspose2d", (2, 16, 7, 7)),
        ("BatchNorm2d", (2, 16, 7, 7)),
        ("ReLU", (2, 16, 7, 7)),
        ("ConvTranspose2d", (2, 8, 14, 14)),
        ("BatchNorm2d", (2, 8, 14, 14)),
        ("ReLU", (2, 8, 14, 14)),
        ("ConvTranspose2d", (2, 1, 28, 28)),
        ("Sigmoid", (2, 1, 28, 28)),
    ]


def test_parameter_counts_match_hand_computation():
    encoder = conv(1, 8) + conv(8, 16) + 2 * 16 + conv(16, 32) + linear(288, 128) + linear(128, 4)
    decoder = linear(4, 128) + linear(128, 288) + conv(32, 16) + 2 * 16 + conv(16, 8) + 2 * 8 + conv(8, 1)
    assert (encoder, decoder) == (43_428, 43_697)
    assert count_parameters(Encoder(4)) == encoder
    assert count_parameters(Decoder(4)) == decoder
    assert sum(r.num_params for r in layer_table(Encoder(4), (1, 1, 28, 28))) == encoder


def test_latent_dim_is_a_parameter_and_decoder_output_is_an_image():
    encoder, decoder = Encoder(latent_dim=7), Decoder(latent_dim=7)
    x = torch.rand(3, 1, 28, 28)
    z = encoder(x)
    assert z.shape == (3, 7)
    y = decoder(z)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1  # sigmoid output


def test_no_affine_batchnorm_has_no_gamma_and_beta():
    assert count_parameters(Encoder(4, batchnorm_affine=False)) == 43_428 - 32


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_latent_dim_is_refused(bad):
    with pytest.raises(ValueError, match="latent_dim"):
        Encoder(latent_dim=bad)


def test_layer_table_text_has_total_and_leaves_training_mode():
    encoder = Encoder(4)
    text = format_layer_table(layer_table(encoder, (1, 1, 28, 28)))
    assert "(B, 32, 3, 3)" in text and text.splitlines()[-1].endswith("43,428")
    assert encoder.training


def test_hand_batch_norm_equals_pytorch_in_training_mode():
    torch.manual_seed(0)
    x = torch.randn(32, 16, 7, 7) * 3 + 1.5
    bn = nn.BatchNorm2d(16)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-1.0, 1.0)
    bn.train()
    expected = bn(x)
    got = batch_norm_2d(x, bn.weight, bn.bias, bn.eps)
    assert torch.allclose(got, expected, atol=1e-5)
    # Dividing by the variance instead of the standard deviation would be far off.
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    wrong = (x - mean) / (var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    assert (wrong - expected).abs().max() > 0.1


def test_hand_batch_norm_without_affine_has_zero_mean_unit_variance():
    x = torch.randn(8, 3, 5, 5) * 4 + 2
    y = batch_norm_2d(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 1, 27, 27), (2, 28, 28), (2, 3, 28, 28), (0, 1, 28, 28)])
def test_encoder_refuses_other_image_shapes(shape):
    """A 32x32 or 27x27 batch used to pass silently with other feature-map sizes."""
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        Encoder(4)(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(2, 3), (4,), (0, 4)])
def test_decoder_refuses_other_code_shapes(shape):
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        Decoder(4)(torch.zeros(shape))


def test_encode_and_decode_refuse_an_empty_batch():
    from dae_utils.generation import decode, encode

    with pytest.raises(ValueError, match="at least one"):
        encode(Encoder(4), torch.zeros(0, 1, 28, 28), torch.device("cpu"))
    with pytest.raises(ValueError, match="at least one"):
        decode(Decoder(4), torch.zeros(0, 4), torch.device("cpu"))


@pytest.mark.parametrize("stride, padding, output_padding, size",
                         [(2, 0, 0, 3), (2, 1, 1, 7), (1, 1, 0, 4), (3, 0, 2, 2)])
def test_transposed_convolution_by_hand_equals_pytorch(stride, padding, output_padding, size):
    from dae_utils.model import conv_transpose_by_hand

    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose2d(3, 2, 3, stride=stride, padding=padding, output_padding=output_padding,
                                     bias=False)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = layer(x)
    by_hand = conv_transpose_by_hand(x, layer.weight.detach(), stride, padding, output_padding)
    assert by_hand.shape == expected.shape
    assert torch.allclose(by_hand, expected, atol=1e-5)


def test_transposed_convolution_is_the_transpose_of_the_convolution_matrix():
    """Build the convolution as a matrix C; the transposed convolution is exactly C^T."""
    torch.manual_seed(0)
    weight = torch.randn(1, 1, 3, 3)
    size_in = 7  # convolution 7 -> 3, so its transpose maps 3 -> 7
    basis = torch.eye(size_in * size_in).view(-1, 1, size_in, size_in)
    matrix = torch.nn.functional.conv2d(basis, weight, stride=2).flatten(1).T  # (9, 49): C x = conv(x)
    y = torch.randn(1, 1, 3, 3)
    transposed = torch.nn.functional.conv_transpose2d(y, weight, stride=2)
    assert torch.allclose(transposed.flatten(), matrix.T @ y.flatten(), atol=1e-5)


def test_biases_before_batchnorm_get_zero_gradient():
    from dae_utils.model import biases_before_batchnorm

    torch.manual_seed(0)
    encoder, decoder = Encoder(4), Decoder(4)
    found = biases_before_batchnorm(encoder) + biases_before_batchnorm(decoder)
    assert [name for name, _ in found] == ["conv.2.bias", "deconv.0.bias", "deconv.3.bias"]
    assert sum(p.numel() for _, p in found) == 16 + 16 + 8
    images = torch.rand(32, 1, 28, 28)
    torch.nn.functional.mse_loss(decoder(encoder(images)), images).backward()
    for _, bias in found:
        assert bias.grad.abs().max() < 1e-6
    assert encoder.conv[0].bias.grad.abs().max() > 1e-4  # an ordinary bias does learn
    assert biases_before_batchnorm(Encoder(4, batchnorm=False)) == []

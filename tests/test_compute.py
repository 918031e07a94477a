"""FLOPs and memory from XLA's analysis of compiled programs, against hand counts."""

import jax
import jax.numpy as jnp

from conftest import tiny_config
from gen_jax import compute
from gen_jax import run as run_lib
from gen_jax.models import layers

NHWC = ("NHWC", "HWIO", "NHWC")


def test_dense_flops_are_two_per_multiply_add():
  x, w = jnp.zeros((8, 100)), jnp.zeros((100, 30))
  assert compute.compiled_cost(lambda x, w: x @ w, x, w)["flops"] == 2 * 8 * 100 * 30


def test_valid_convolution_flops_are_the_hand_count():
  x, k = jnp.zeros((4, 12, 12, 5)), jnp.zeros((3, 3, 5, 7))
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=NHWC)
  assert compute.compiled_cost(conv, x, k)["flops"] == 2 * 4 * (10 * 10) * (3 * 3) * 5 * 7


def test_strided_same_convolution_counts_only_the_taps_inside_the_image():
  # 14x14 -> 7x7 with a 4x4 kernel, stride 2, one row and column of padding on each side: the
  # first and last outputs of each axis read 3 real rows, the 5 others 4: 26 taps per axis.
  x, k = jnp.zeros((4, 14, 14, 5)), jnp.zeros((4, 4, 5, 7))
  assert compute.compiled_cost(layers.xla_conv_4x4_stride2, x, k)["flops"] == 2 * 4 * 26 * 26 * 5 * 7
  # The matrix-product form multiplies the padding too: all 4 x 4 taps of all 7 x 7 outputs.
  assert compute.compiled_cost(layers.conv_4x4_stride2, x, k)["flops"] == 2 * 4 * 49 * 16 * 5 * 7


def test_a_train_step_costs_about_three_forward_passes(tfds_dir):
  config = tiny_config("vae_mnist")          # 784-32-(2x4) encoder, 4-32-784 decoder, batch 32
  run = run_lib.build(config)
  state = run_lib.init_state(run)
  cost = compute.step_cost(run, state)
  forward = 2 * 32 * (784 * 32 + 32 * 8 + 4 * 32 + 32 * 784)   # the matrix products
  # backward: two products per forward product (the input's gradient is not needed for the first
  # layer, but XLA computes it only where used); plus elementwise work (losses, Adam)
  assert 2.5 * forward < cost["flops_per_step"] < 3.5 * forward
  assert cost["flops_per_image"] == cost["flops_per_step"] / 32
  assert cost["params"] == (784 * 32 + 32) + (32 * 8 + 8) + (4 * 32 + 32) + (32 * 784 + 784)
  assert cost["peak_bytes"] > 3 * 4 * cost["params"]        # params and Adam's two moments

"""The convolution layers' two implementations (matrix products for CPU, XLA's convolutions for
GPU and TPU) are one function of the same parameters, forward and backward; 'auto' picks by
backend."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.models import autoencoders, gan, layers


def test_auto_is_matmul_on_cpu_and_xla_on_accelerators():
  assert layers.resolve_conv_impl("auto", "cpu") == "matmul"
  assert layers.resolve_conv_impl("auto", "gpu") == "xla"
  assert layers.resolve_conv_impl("auto", "tpu") == "xla"
  assert layers.resolve_conv_impl("auto") == "matmul"   # the tests run on CPU
  assert layers.resolve_conv_impl("xla", "cpu") == "xla"
  with pytest.raises(ValueError, match=r"unknown model.conv_impl 'cudnn': choose one of auto, "
                                       r"matmul, xla"):
    layers.resolve_conv_impl("cudnn")


def _loss_and_grads(module, x, *args):
  variables = module.init(jax.random.PRNGKey(0), x, *args)

  def loss(params, x):
    out = module.apply({**variables, "params": params}, x, *args, mutable=["batch_stats"])[0]
    out = out[0] if isinstance(out, tuple) else out
    return jnp.sum(jnp.sin(out))

  value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables["params"], x)
  return value, grads


@pytest.mark.parametrize("make, shape, args", [
    (functools.partial(gan.DCGANDiscriminator, channels=(8, 16)), (3, 28, 28, 1), ()),
    (functools.partial(gan.DCGANGenerator, channels=(16, 8), image_shape=(28, 28, 1)), (3, 10), ()),
    (functools.partial(gan.DCGANGenerator, channels=(16, 8, 4), image_shape=(32, 32, 3)), (3, 10), ()),
    (functools.partial(autoencoders.VAE, arch="conv", hidden=(16,), latent_dim=3,
                       image_shape=(28, 28, 1), channels=(4, 8)), (3, 28, 28, 1),
     (jax.random.PRNGKey(1),)),
    (functools.partial(gan.FeatureDiscriminator, arch="conv", hidden=(16,), channels=(4, 8)),
     (3, 28, 28, 1), ()),
])
def test_matmul_and_xla_convolutions_give_the_same_model(make, shape, args):
  x = jax.random.uniform(jax.random.PRNGKey(2), shape)
  (v_mm, (g_mm, gx_mm)), (v_xla, (g_xla, gx_xla)) = (
      _loss_and_grads(make(conv_impl=impl), x, *args) for impl in ("matmul", "xla"))
  np.testing.assert_allclose(v_mm, v_xla, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(gx_mm, gx_xla, rtol=1e-4, atol=1e-5)
  assert jax.tree.structure(g_mm) == jax.tree.structure(g_xla)
  # A bias before batch norm has a gradient of 0 up to rounding: the tolerance is relative to
  # the largest gradient of the model.
  scale = max(float(np.abs(b).max()) for b in jax.tree.leaves(g_xla))
  for a, b in zip(jax.tree.leaves(g_mm), jax.tree.leaves(g_xla)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_an_unresolved_impl_is_a_clear_error():
  with pytest.raises(ValueError, match=r"impl='auto' is not one of matmul, xla; resolve 'auto'"):
    layers.Conv2x(4, impl="auto").init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))


@pytest.mark.parametrize("cin, cout", [(3, 4), (6, 2)])   # patches; taps shifted into place
def test_conv_3x3_equals_lax_conv_forward_and_backward(cin, cout):
  x = jax.random.normal(jax.random.key(0), (2, 5, 6, cin))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, cin, cout))
  want = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(layers.conv_3x3(x, kernel), want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(layers.xla_conv_3x3(x, kernel), want, rtol=1e-6, atol=1e-6)
  loss = lambda conv: lambda x, k: jnp.sum(jnp.sin(conv(x, k)))
  for got, ref in zip(jax.grad(loss(layers.conv_3x3), (0, 1))(x, kernel),
                      jax.grad(loss(layers.xla_conv_3x3), (0, 1))(x, kernel)):
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_cnn_classifier_is_the_same_function_with_either_convolution():
  from gen_jax.models.classifier import CNN
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
  xla, matmul = CNN(conv_impl="xla"), CNN(conv_impl="matmul")
  params = xla.init(jax.random.key(1), x)["params"]
  # nn.Conv's names and shapes, and the same initialisation from the same key
  jax.tree.map(np.testing.assert_array_equal, params, matmul.init(jax.random.key(1), x)["params"])
  np.testing.assert_allclose(matmul.apply({"params": params}, x), xla.apply({"params": params}, x),
                             rtol=1e-5, atol=1e-5)
  grad = lambda model: jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x) ** 2))(params)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-5),
               grad(matmul), grad(xla))
  with pytest.raises(ValueError, match="unknown model.conv_impl 'cudnn'"):
    CNN(conv_impl="cudnn").init(jax.random.key(1), x)

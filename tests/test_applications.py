"""Applications: masks, completion by each family's method, interpolation, path length, the suite."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from conftest import tiny_config
from gen_jax import run as run_lib
from gen_jax import train
from gen_jax.applications import completion, conditional, interpolation, masks, suite
from gen_jax.metrics import networks
from gen_jax.models.autoencoders import VAE
from gen_jax.steps import gan as gan_steps
from gen_jax.steps import vae as vae_steps
from gen_jax import steps


# ---- masks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,known", [("bottom", 0.5), ("left", 0.5), ("centre", 0.75),
                                        ("random_50", 0.5), ("random_80", 0.2)])
def test_masks_hide_the_named_share_of_pixels(name, known):
  mask = np.asarray(masks.make(name, (28, 28, 1), num=200, key=jax.random.PRNGKey(0)))
  assert mask.shape == (200, 28, 28, 1) and mask.dtype == bool
  assert mask.mean() == pytest.approx(known, abs=0.01 if name.startswith("random") else 0)
  if name == "bottom":
    assert mask[:, :14].all() and not mask[:, 14:].any()
  if name == "left":
    assert mask[:, :, 14:].all() and not mask[:, :, :14].any()
  if name == "centre":
    assert not mask[:, 7:21, 7:21].any() and mask[:, :7].all()


def test_unknown_mask_names_the_choices():
  with pytest.raises(ValueError, match="bottom, left, centre"):
    masks.make("top", (28, 28, 1), num=1)
  with pytest.raises(ValueError, match="pass a key"):
    masks.make("random_50", (28, 28, 1), num=1)


def test_known_mean_fill_uses_each_images_own_known_pixels():
  x = jnp.arange(2 * 2 * 2 * 1, dtype=jnp.float32).reshape(2, 2, 2, 1)
  mask = masks.make("bottom", (2, 2, 1), num=2)
  filled = np.asarray(masks.known_mean_fill(x, mask))
  np.testing.assert_array_equal(filled[0, 1], [[0.5], [0.5]])   # mean of 0, 1
  np.testing.assert_array_equal(filled[1, 1], [[4.5], [4.5]])   # mean of 4, 5


def test_missing_pixel_errors_count_only_the_missing_pixels():
  x = jnp.zeros((1, 2, 2, 1))
  mask = masks.make("bottom", (2, 2, 1), num=1)
  guess = jnp.array([[[[9.0], [9.0]], [[0.5], [0.1]]]])    # the known row is wrong on purpose
  e = completion.missing_pixel_errors(guess, x, mask)
  assert float(e["mse"][0]) == pytest.approx((0.25 + 0.01) / 2)
  assert float(e["psnr"][0]) == pytest.approx(10 * np.log10(1 / 0.13), rel=1e-5)


# ---- completion methods -------------------------------------------------------------------------


def _tiny_vae(seed=0, scale=3.0):
  """A 6-pixel VAE with a 1-d code, its decoder's weights scaled up so that p(x) is far from
  uniform (the encoder stays as initialised: a poor but broad proposal)."""
  model = VAE(arch="mlp", hidden=(8,), latent_dim=1, image_shape=(2, 3, 1))
  params = dict(model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 2, 3, 1)),
                           jax.random.PRNGKey(1))["params"])
  params["decoder"] = jax.tree.map(lambda p: p * scale, params["decoder"])
  return model, {"params": params}


def _exact_conditional(model, variables, known_row):
  """p(bottom row | top row = known_row) over the 8 completions, by quadrature over z."""
  z = jnp.linspace(-8, 8, 4001)[:, None]
  logits = np.asarray(model.apply(variables, z, method=VAE.decode), np.float64).reshape(-1, 6)
  log_prior = -0.5 * np.asarray(z[:, 0], np.float64) ** 2
  states = np.array(list(itertools.product([0, 1], repeat=3)), np.float64)
  full = np.concatenate([np.tile(known_row, (8, 1)), states], 1)            # (8, 6)
  log_lik = full @ logits.T - np.logaddexp(0, logits).sum(-1)[None]         # (8, Z)
  p = np.exp(log_lik + log_prior[None] - (log_lik + log_prior[None]).max()).sum(-1)
  return p / p.sum()


def _chain_counts(model, variables, known_row, *, metropolis, n=20000, num_steps=60):
  x = jnp.asarray(np.concatenate([np.tile(known_row, (n, 1)), np.zeros((n, 3))], 1),
                  jnp.float32).reshape(n, 2, 3, 1)
  mask = masks.make("bottom", (2, 3, 1), num=n)
  chain = jax.jit(lambda key: completion.vae_chain(
      key, x, mask, encode=lambda v: model.apply(variables, v, method=VAE.encode),
      decode_logits=lambda z: model.apply(variables, z, method=VAE.decode), num_steps=num_steps,
      metropolis=metropolis, sample_pixels=True))
  out, _, accepted = chain(jax.random.PRNGKey(3))
  out = np.asarray(out).reshape(n, 6)
  np.testing.assert_array_equal(out[:, :3], np.tile(known_row, (n, 1)))    # clamped, bit-identical
  index = (out[:, 3:] * np.array([4, 2, 1])).sum(-1).astype(int)
  return np.bincount(index, minlength=8), float(np.mean(accepted))


@pytest.mark.heavy
def test_metropolis_within_gibbs_samples_the_exact_conditional():
  """Mattei & Frellsen's chain draws the missing pixels from p(x_miss | x_known) exactly (chi-square
  against quadrature), with an untrained encoder as its proposal; pseudo-Gibbs, which trusts that
  encoder, does not."""
  model, variables = _tiny_vae()
  known_row = np.array([1.0, 0.0, 1.0])
  p = _exact_conditional(model, variables, known_row)
  counts, accept = _chain_counts(model, variables, known_row, metropolis=True)
  assert 0.05 < accept < 1.0
  assert stats.chisquare(counts, counts.sum() * p).pvalue > 0.01
  pseudo, _ = _chain_counts(model, variables, known_row, metropolis=False)
  assert stats.chisquare(pseudo, pseudo.sum() * p).pvalue < 1e-6


def test_latent_optimisation_recovers_the_code_of_a_fixed_generator():
  a = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  generate = lambda z: jax.nn.sigmoid(z @ a).reshape(-1, 4, 4, 1)
  z_true = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
  x = generate(z_true)
  mask = masks.make("bottom", (4, 4, 1), num=5)      # 8 known pixels determine the 3-d code
  filled, z = jax.jit(lambda z0: completion.latent_optimisation(
      z0, x, mask, generate=generate, num_steps=4000, learning_rate=0.002))(jnp.zeros((5, 3)))
  np.testing.assert_allclose(z, z_true, atol=1e-3)
  np.testing.assert_allclose(filled, x, atol=1e-3)   # the missing half follows from the code
  np.testing.assert_array_equal(np.asarray(filled)[:, :2], np.asarray(x)[:, :2])
  # Restarts: each image keeps its best start (here the true code, among far ones).
  starts = jnp.stack([z_true + 3.0, z_true, z_true - 3.0]).at[1, 0].set(z_true[0] + 3.0)
  _, z = completion.latent_optimisation(starts, x, mask, generate=generate, num_steps=0,
                                        learning_rate=0.002)
  np.testing.assert_array_equal(z[1:], z_true[1:])
  assert not np.allclose(z[0], z_true[0])


def test_iterated_projection_reaches_the_fixed_point_of_a_contraction():
  x = jax.random.uniform(jax.random.PRNGKey(0), (3, 4, 4, 1))
  mask = masks.make("left", (4, 4, 1), num=3)
  target = jnp.full_like(x, 0.25)
  out = completion.iterated_projection(x, mask, reconstruct=lambda v: 0.5 * v + 0.5 * target,
                                       num_steps=60)
  np.testing.assert_array_equal(np.asarray(out)[mask], np.asarray(x)[mask])
  np.testing.assert_allclose(np.asarray(out)[~np.asarray(mask)], 0.25, atol=1e-6)


FAMILY_CONFIGS = ["vae_mnist", "ae_mnist", "rbm_mnist", "dbn_mnist", "gan_mnist", "bigan_mnist",
                  "vaegan_mlp_mnist"]


def test_mean_of_chains_averages_completions_with_folded_keys():
  images = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 4, 4, 1)), jnp.float32)
  mask = masks.make("bottom", (4, 4, 1), num=3)
  draw = lambda state, batch, m, key: completion.paste(
      batch["image"], m, jax.random.uniform(key, batch["image"].shape))
  key = jax.random.PRNGKey(3)
  out = jax.jit(completion.mean_of_chains(draw, 5))(None, {"image": images}, mask, key)
  expected = np.mean([np.asarray(jax.random.uniform(jax.random.fold_in(key, i), images.shape))
                      for i in range(5)], axis=0)
  np.testing.assert_allclose(np.asarray(out)[~np.asarray(mask)], expected[~np.asarray(mask)],
                             rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(out)[np.asarray(mask)],
                                np.asarray(images)[np.asarray(mask)])   # bit-identical
  assert completion.mean_of_chains(draw, 1) is draw
  with pytest.raises(ValueError, match="apps.num_chains=0"):
    completion.mean_of_chains(draw, 0)


def test_nearest_neighbour_takes_the_training_image_closest_on_the_known_pixels():
  rng = np.random.default_rng(1)
  train = rng.uniform(size=(50, 4, 4, 1)).astype(np.float32)
  images = rng.uniform(size=(6, 4, 4, 1)).astype(np.float32)
  mask = rng.uniform(size=images.shape) < 0.5
  out = np.asarray(completion.nearest_neighbour(jnp.asarray(images), jnp.asarray(mask),
                                                jnp.asarray(train)))
  for i in range(6):
    j = np.argmin([np.sum(((t - images[i]) ** 2)[mask[i]]) for t in train])
    np.testing.assert_array_equal(out[i], np.where(mask[i], images[i], train[j]))


@pytest.mark.parametrize("name", FAMILY_CONFIGS)
def test_every_family_completes_and_keeps_the_known_pixels_bit_identical(name):
  config = tiny_config(name)
  config.apps.num_steps = 2
  if name.startswith("vae"):
    config.apps.method = "pseudo_gibbs"
  family = steps.get(config.model.family).from_config(config, (28, 28, 1))
  state = family.init(jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1))
  mask = masks.make("random_50", (28, 28, 1), num=4, key=jax.random.PRNGKey(2))
  out = np.asarray(jax.jit(family.inpaint)(state, {"image": x}, mask, jax.random.PRNGKey(3)))
  assert out.shape == x.shape and family.inpaint_method
  np.testing.assert_array_equal(out[np.asarray(mask)], np.asarray(x)[np.asarray(mask)])
  assert np.all((out >= 0) & (out <= 1))
  assert not np.array_equal(out, np.asarray(masks.known_mean_fill(x, mask)))


# ---- interpolation -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", interpolation.METHODS)
def test_interpolation_endpoints_are_the_decoded_encodings(method):
  config = tiny_config("vae_mnist")
  family = vae_steps.from_config(config, (28, 28, 1))
  state = family.init(jax.random.key_data(jax.random.PRNGKey(0)))
  x = jax.random.uniform(jax.random.PRNGKey(1), (6, 28, 28, 1))
  z = family.encode(state, x)
  grid = np.asarray(family.interpolate(state, z[:3], z[3:], num=5, method=method))
  assert grid.shape == (3, 5, 28, 28, 1)
  np.testing.assert_allclose(grid[:, 0], family.decode(state, z[:3]), atol=1e-6)
  np.testing.assert_allclose(grid[:, -1], family.decode(state, z[3:]), atol=1e-6)


def test_slerp_follows_the_great_circle_and_lerp_the_chord():
  a, b = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]])
  np.testing.assert_allclose(interpolation.slerp(a, b, 0.5), [[1.5 / np.sqrt(2)] * 2], atol=1e-6)
  np.testing.assert_allclose(interpolation.lerp(a, b, 0.5), [[0.5, 1.0]], atol=1e-7)
  np.testing.assert_allclose(interpolation.slerp(a, a, 0.3), a, atol=1e-6)   # zero angle


def test_path_length_of_a_linear_decoder_is_the_squared_image_distance():
  w = jax.random.normal(jax.random.PRNGKey(0), (4, 9))
  decode = lambda state, z: z @ w
  za = jax.random.normal(jax.random.PRNGKey(1), (7, 4))
  zb = jax.random.normal(jax.random.PRNGKey(2), (7, 4))
  lengths = interpolation.path_lengths(decode, lambda f: f, None, za, zb, jax.random.PRNGKey(3),
                                       epsilon=1e-2, method="lerp")
  np.testing.assert_allclose(lengths, jnp.sum(((zb - za) @ w) ** 2, -1), rtol=1e-3)


# ---- the suite ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_ae(tmp_path_factory, tfds_dir):
  del tfds_dir
  workdir = tmp_path_factory.mktemp("apps") / "ae"
  config = tiny_config("ae_mnist", num_steps=40)
  train.train_and_evaluate(config, str(workdir))
  return config, workdir


@pytest.mark.heavy
def test_apps_suite_writes_cards_for_every_mask_and_the_floor(trained_ae):
  config, workdir = trained_ae
  config.apps.num_images = 300
  config.apps.batch_size = 300
  config.apps.masks = ("bottom", "random_80")
  config.apps.ppl_pairs = 100
  config.apps.num_steps = 5
  config.apps.nearest_neighbour = True
  written = suite.evaluate_workdir(config, workdir, command="test")
  by = {(c["model"], c["metric"], c.get("mask")): c for c in written}
  assert by[("real images (300 images)", "completion_accuracy", None)]["value"] > 0.95
  assert by[(workdir.name, "completion_psnr", "bottom")]["method"] == "iterated projection (5 steps)"
  # The cards hold what the family's own inpaint and the floor give on those images (one batch:
  # its key is fold_in(PRNGKey(seed), 0)).
  run, state = run_lib.restore(config, workdir)
  images, labels = suite.evaluation_images(config)
  assert images.shape == (300, 28, 28, 1) and images.max() == 1.0
  net = networks.load("mnist-cnn-v1")
  mask_key, run_key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.apps.seed), 0))
  mask = masks.make("random_80", (28, 28, 1), num=300, key=mask_key)
  x = jnp.asarray(images)
  for who, filled in ((workdir.name, run.family.inpaint(state, {"image": x}, mask, run_key)),
                      ("known-pixel mean (300 images)", masks.known_mean_fill(x, mask))):
    errors = completion.missing_pixel_errors(filled, x, mask)
    assert by[(who, "completion_mse", "random_80")]["value"] == pytest.approx(
        float(np.mean(errors["mse"])), rel=1e-5)
    assert by[(who, "completion_psnr", "random_80")]["n_real"] == 300
    correct = np.asarray(net.apply(filled)[1]).argmax(-1) == labels
    assert by[(who, "completion_accuracy", "random_80")]["value"] == pytest.approx(correct.mean())
  # The non-parametric reference: the training image nearest on the known pixels (brute force).
  train_x, _ = suite.training_images(config)
  m = np.asarray(mask).reshape(300, -1)
  flat, t = images.reshape(300, -1), train_x.reshape(len(train_x), -1)
  picked = [t[np.argmin(((t - flat[i]) ** 2 * m[i]).sum(-1))] for i in range(0, 300, 60)]
  errors = [np.mean((p - flat[i])[~m[i]] ** 2) for p, i in zip(picked, range(0, 300, 60))]
  nn = np.asarray(completion.nearest_neighbour(x, mask, jnp.asarray(train_x)))
  np.testing.assert_allclose([np.mean((nn[i].reshape(-1) - flat[i])[~m[i]] ** 2)
                              for i in range(0, 300, 60)], errors, rtol=1e-5, atol=1e-7)
  errors = completion.missing_pixel_errors(nn, x, mask)
  assert by[("nearest training image (300 images)", "completion_mse", "random_80")]["value"] == \
      pytest.approx(float(np.mean(errors["mse"])), rel=1e-5)
  assert by[(workdir.name, "ppl_encoder", None)]["value"] > 0
  assert (workdir / "apps" / "completion_bottom.png").exists()
  assert (workdir / "apps" / "interpolation_encoder.png").exists()
  lines = (workdir / "apps_cards.jsonl").read_text().splitlines()
  assert len(lines) == len(written) == 1 + 2 * 9 + 1   # ceiling; 3 cards x 3 rows x 2 masks; PPL
  assert json.loads(lines[0])["feature_network"] == "mnist-cnn-v1"


def test_apps_suite_rejects_a_method_the_family_lacks(trained_ae):
  config, workdir = trained_ae
  config.apps.method = "mwg"
  with pytest.raises(ValueError, match="only the VAE"):
    suite.evaluate_workdir(config, workdir)
  classifier = tiny_config("classifier_mnist")
  family = steps.get("classifier").from_config(classifier, (28, 28, 1))
  with pytest.raises(ValueError, match="serves none of the applications"):
    suite.check(classifier, family)


# ---- conditional generation --------------------------------------------------------------------


def test_class_accuracy_counts_each_requested_class():
  labels = np.array([0, 0, 1, 1, 2, 2])
  predicted = np.array([0, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(conditional.class_accuracy(predicted, labels, 3), [0.5, 1.0, 0.0])


@pytest.fixture(scope="module")
def mnist_subset(tfds_dir):
  del tfds_dir
  from gen_jax import data
  x, y = data.read_rows("mnist", "train", 0, 6000)
  tx, ty = data.read_rows("mnist", "test", 0, 2000)
  f = lambda a: np.asarray(a, np.float32) / 255.0
  return (f(x[:5000]), np.asarray(y[:5000])), (f(x[5000:]), np.asarray(y[5000:])), (f(tx), np.asarray(ty))


@pytest.mark.heavy
def test_cas_of_a_perfect_and_of_a_class_blind_generator(mnist_subset):
  """A 'generator' that returns real images of the requested class scores the real reference;
  one whose images ignore the requested class scores chance; few labels score below many."""
  train, other, test = mnist_subset
  kwargs = dict(model=conditional.classifier_model(64, 10), num_steps=400, batch_size=64,
                learning_rate=3e-3, few_labels=100, seed=0)
  perfect = conditional.classification_accuracy_scores(other, train, test, **kwargs)
  assert perfect["real"] > 0.85
  assert perfect["cas"] == pytest.approx(perfect["real"], abs=0.03)
  assert perfect["few_real"] < perfect["real"] - 0.05
  assert perfect["few_real_plus_generated"] > perfect["few_real"] + 0.05
  shuffled = (other[0], np.random.default_rng(0).permutation(other[1]))
  blind = conditional.classification_accuracy_scores(shuffled, train, test, **kwargs)
  assert blind["cas"] < 0.2
  assert blind["real"] == perfect["real"]     # the same seed and data: the same reference


def test_cas_classifier_is_an_mlp_or_a_small_cnn_named_for_the_cards():
  mlp = conditional.classifier_model(512, 10)
  cnn = conditional.classifier_model(128, 10, (16, 32))
  assert conditional.classifier_name(mlp, 784) == "MLP 784-512-10"
  assert conditional.classifier_name(cnn, 784) == "CNN conv16-pool-conv32-pool-128-10"
  x = jnp.zeros((2, 28, 28, 1))
  params = cnn.init(jax.random.PRNGKey(0), x)["params"]
  # two 3x3 convolutions (1 -> 16 -> 32 channels), each pooled (28 -> 14 -> 7), then 7*7*32 -> 128
  assert [params[f"Conv_{i}"]["kernel"].shape for i in (0, 1)] == [(3, 3, 1, 16), (3, 3, 16, 32)]
  assert params["Dense_0"]["kernel"].shape == (7 * 7 * 32, 128)
  assert cnn.apply({"params": params}, x).shape == (2, 10)
  assert "Conv_0" not in mlp.init(jax.random.PRNGKey(0), x)["params"]
  assert cnn.conv_impl == "auto"     # patch-matrix products on CPU: XLA's train slowly in a loop


def test_acgan_samples_the_requested_class_code_and_learns_real_labels():
  config = tiny_config("acgan_mnist")
  config.model.arch = "mlp"          # the DCGAN's networks would only slow the test down
  config.model.gen_hidden = config.model.disc_hidden = (32,)
  family = steps.get("gan").from_config(config, (28, 28, 1))
  assert family.num_classes == 10
  state = family.init(jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (config.batch_size, 28, 28, 1))
  _, metrics = jax.jit(family.train_step)(state, {"image": x, "label": jnp.zeros(
      config.batch_size, jnp.int32)})
  assert float(metrics["class_ce"]) > 0
  labels = jnp.arange(8) % 10
  np.testing.assert_array_equal(family.sample(state, jax.random.PRNGKey(2), 8, labels),
                                gan_steps.sample(state, jax.random.PRNGKey(2), 8, codes=labels,
                                                 **_draw(config)))
  with pytest.raises(ValueError, match="trains on labels"):
    family.train_step(state, {"image": x})


def _draw(config):
  m = config.model
  gen, _ = gan_steps.create_models(config, (28, 28, 1))
  return dict(gen=gen, z_dim=m.z_dim, output=m.gen_output, standing_num=m.standing_stats_num,
              cat_dim=m.cat_dim)


def test_conditional_vae_decodes_given_the_label_and_needs_labels():
  config = tiny_config("cvae_mnist")
  family = vae_steps.from_config(config, (28, 28, 1))
  assert family.num_classes == 10 and family.inpaint is None
  state = family.init(jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1))
  state, metrics = family.train_step(state, {"image": x, "label": jnp.arange(4)})
  assert np.isfinite(float(metrics["loss"]))
  a = family.sample(state, jax.random.PRNGKey(2), 4, jnp.zeros(4, jnp.int32))
  b = family.sample(state, jax.random.PRNGKey(2), 4, jnp.ones(4, jnp.int32))
  assert a.shape == (4, 28, 28, 1) and not np.allclose(a, b)   # same z, another class
  with pytest.raises(ValueError, match="labelled batches"):
    family.train_step(state, {"image": x})
  config.model.arch = "conv"
  with pytest.raises(ValueError, match="MLP encoder"):
    vae_steps.from_config(config, (28, 28, 1))


def test_apps_use_labelled_grey_images_even_for_binarized_training_data():
  config = tiny_config("rbm_mnist")
  assert config.dataset.name == "binarized_mnist"
  assert suite.dataset_of(config) == "mnist"             # Larochelle's split has no labels
  config.apps.dataset = "fashion_mnist"
  assert suite.dataset_of(config) == "fashion_mnist"


def test_a_bad_grid_mask_stops_training_before_it_starts(tfds_dir, tmp_path):
  del tfds_dir
  config = tiny_config("ae_mnist", **{"apps.grid_mask": "top"})
  with pytest.raises(ValueError, match="unknown completion mask 'top'"):
    train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()

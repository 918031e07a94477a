import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.state import TrainState


def _state():
  params = {"gen": {"w": jnp.ones(3)}, "disc": {"w": jnp.ones(2)}}
  return TrainState.create(params=params, tx={"gen": optax.sgd(0.5), "disc": optax.sgd(1.0)},
                           key=jax.random.PRNGKey(0))


def test_apply_gradients_updates_only_named_networks_with_their_own_optimizer():
  s = _state()
  s1 = s.apply_gradients({"disc": {"w": jnp.ones(2)}}, next_step=False)
  np.testing.assert_array_equal(s1.params["disc"]["w"], jnp.zeros(2))
  np.testing.assert_array_equal(s1.params["gen"]["w"], jnp.ones(3))
  assert int(s1.step) == 0
  s2 = s1.apply_gradients({"gen": {"w": jnp.ones(3)}})
  np.testing.assert_array_equal(s2.params["gen"]["w"], jnp.full(3, 0.5))
  assert int(s2.step) == 1


def test_step_key_depends_on_step_and_salt_only():
  s = _state()
  assert not np.array_equal(s.step_key(), s.replace(step=s.step + 1).step_key())
  assert not np.array_equal(s.step_key(0), s.step_key(1))
  np.testing.assert_array_equal(s.step_key(), _state().step_key())


def test_state_is_a_pytree_that_jits():
  s = _state()
  out = jax.jit(lambda st: st.apply_gradients({"gen": {"w": jnp.ones(3)}}))(s)
  assert int(out.step) == 1 and out.tx is s.tx


def test_create_rejects_a_network_without_an_optimizer():
  with pytest.raises(ValueError, match="exactly one optimizer"):
    TrainState.create(params={"a": {}, "b": {}}, tx={"a": optax.sgd(1.0)}, key=jax.random.PRNGKey(0))

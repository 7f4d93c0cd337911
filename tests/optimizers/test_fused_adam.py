import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_recae.optimizers import FusedAdam


def numpy_adam(weights, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Kingma & Ba's update, written out step by step."""
    m = np.zeros_like(weights)
    v = np.zeros_like(weights)
    for step, gradient in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * gradient
        v = beta_2 * v + (1 - beta_2) * gradient**2
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        weights = weights - alpha * m / (np.sqrt(v) + epsilon)
    return weights


@pytest.mark.parametrize("jit_compile", [False, True])
def test_matches_the_adam_update(jit_compile):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 3)).astype("float32")
    gradients = [rng.normal(size=(5, 3)).astype("float32") for _ in range(4)]
    variable = keras.Variable(start)
    optimizer = FusedAdam(learning_rate=0.05)

    @tf.function(jit_compile=jit_compile)
    def step(gradient):
        optimizer.apply([gradient], [variable])

    for gradient in gradients:
        step(tf.constant(gradient))
    expected = numpy_adam(start.astype("float64"), gradients, lr=0.05)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert int(optimizer.iterations.numpy()) == len(gradients)


def test_agrees_with_keras_adam_in_a_fit():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    results = []
    for optimizer in (FusedAdam(1e-2), keras.optimizers.Adam(1e-2)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
        results.append(model.get_weights())
    for fused, plain in zip(*results):
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-6)


def test_amsgrad_falls_back_to_keras_update():
    variable = keras.Variable(np.ones((3,), "float32"))
    optimizer = FusedAdam(learning_rate=0.1, amsgrad=True)
    optimizer.apply([tf.ones((3,))], [variable])
    reference = keras.Variable(np.ones((3,), "float32"))
    keras.optimizers.Adam(learning_rate=0.1, amsgrad=True).apply([tf.ones((3,))], [reference])
    np.testing.assert_allclose(variable.numpy(), reference.numpy(), rtol=1e-6)


def test_config_round_trip():
    optimizer = FusedAdam(learning_rate=0.003, beta_1=0.8, epsilon=1e-6)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, FusedAdam)
    assert restored.get_config() == optimizer.get_config()


def numpy_lazy_adam(weights, sparse_gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Adam on the rows each step's gradient holds (repeats summed); the others untouched."""
    weights = weights.copy()
    m = np.zeros_like(weights)
    v = np.zeros_like(weights)
    for step, (rows, values) in enumerate(sparse_gradients, start=1):
        summed = {}
        for row, value in zip(rows, values):
            summed[row] = summed.get(row, 0.0) + value
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        for row, gradient in summed.items():
            m[row] = beta_1 * m[row] + (1 - beta_1) * gradient
            v[row] = beta_2 * v[row] + (1 - beta_2) * gradient**2
            weights[row] -= alpha * m[row] / (np.sqrt(v[row]) + epsilon)
    return weights, m, v


@pytest.mark.parametrize("jit_compile", [False, True])
def test_sparse_updates_touch_only_the_rows_of_the_gradient(jit_compile):
    rng = np.random.default_rng(2)
    start = rng.normal(size=(8, 3)).astype("float32")
    steps = [
        (np.array([1, 3, 1]), rng.normal(size=(3, 3)).astype("float32")),  # a repeated row
        (np.array([3, 6]), rng.normal(size=(2, 3)).astype("float32")),
        (np.array([0]), rng.normal(size=(1, 3)).astype("float32")),
    ]
    variable = keras.Variable(start)
    optimizer = FusedAdam(learning_rate=0.05, sparse_updates=True)

    @tf.function(jit_compile=jit_compile)
    def step(rows, values):
        gradient = tf.IndexedSlices(values, rows, tf.constant(start.shape, tf.int64))
        optimizer.apply([gradient], [variable])

    for rows, values in steps:
        step(tf.constant(rows, tf.int64), tf.constant(values))
    weights, m, v = numpy_lazy_adam(start.astype("float64"), steps, lr=0.05)
    np.testing.assert_allclose(variable.numpy(), weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(optimizer._velocities[0].numpy(), v, rtol=1e-4, atol=1e-9)
    untouched = [2, 4, 5, 7]
    np.testing.assert_array_equal(variable.numpy()[untouched], start[untouched])
    # Saved and read back with its option.
    assert FusedAdam.from_config(optimizer.get_config()).sparse_updates


def test_without_sparse_updates_row_gradients_get_the_dense_adam_update():
    rng = np.random.default_rng(3)
    start = rng.normal(size=(4, 2)).astype("float32")
    rows, values = np.array([1, 2]), rng.normal(size=(2, 2)).astype("float32")
    dense = np.zeros_like(start)
    dense[rows] = values
    variable = keras.Variable(start)
    optimizer = FusedAdam(learning_rate=0.05)
    for _ in range(2):  # the second step moves row 1 and 2 again; the others stay at zero moments
        optimizer.apply(
            [tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([4, 2]))],
            [variable],
        )
    expected = numpy_adam(start.astype("float64"), [dense, dense], lr=0.05)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)

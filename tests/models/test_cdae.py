import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.data.split import EvalSet
from keras_recae.evaluation import evaluate_ranking, top_k_items, training_user_rows
from keras_recae.losses import logistic_loss
from keras_recae.models import CDAE

N_ITEMS = 40
BATCH = 40


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def trained(data):
    """A small CDAE with negative sampling fitted for 10 epochs of 3 steps."""
    keras.utils.set_random_seed(0)
    model = CDAE(hidden_dim=8, negative_ratio=3, seed=1)
    model.set_user_ids(data.user_ids)
    model.set_item_ids(data.item_ids)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(model.training_batches(data.matrix, BATCH, seed=0), epochs=10, verbose=0)
    return model, history.history


def batch(data, rows=slice(0, 10)):
    return to_sparse_tensor(data.matrix[rows])


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_outputs(model, dense, users=None):
    """The outputs at inference; `users` None or -1 leave the user node at zero."""
    pre = dense.astype(np.float64) @ model.encoder_layer.kernel.numpy() + model.hidden_bias.numpy()
    if users is not None:
        nodes = model.user_embedding.numpy()[np.maximum(users, 0)]
        pre = pre + nodes * (np.asarray(users) >= 0)[:, None]
    hidden = sigmoid(pre) if model.activation == "sigmoid" else pre
    return hidden @ model.output_layer.kernel.numpy() + model.output_layer.bias.numpy()


def numpy_penalty(model):
    weights = [
        model.encoder_layer.kernel,
        model.hidden_bias,
        model.user_embedding,
        model.output_layer.kernel,
        model.output_layer.bias,
    ]
    return model.l2 * sum(np.sum(w.numpy().astype(np.float64) ** 2) for w in weights)


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_fit_lowers_the_loss(trained):
    _, history = trained
    losses = history["loss"]
    assert len(losses) == 10 and np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 1.0
    assert history["reconstruction"][-1] < history["reconstruction"][0]


def full_logistic_loss(model, data):
    """The mean over users of the logistic loss over every item, with the user nodes."""
    x = to_sparse_tensor(data.matrix)
    outputs = model.score_users(x, tf.range(data.n_users)).numpy()
    return float(np.mean(logistic_loss(outputs, x).numpy()))


@pytest.mark.parametrize("negative_ratio", [None, 4])
def test_one_epoch_lowers_the_loss(data, negative_ratio):
    keras.utils.set_random_seed(0)
    model = CDAE(hidden_dim=8, negative_ratio=negative_ratio, seed=0)
    model.set_user_ids(data.user_ids)
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    model.build((None, N_ITEMS))
    before = full_logistic_loss(model, data)
    model.fit(model.training_batches(data.matrix, BATCH, seed=0), epochs=1, verbose=0)
    assert full_logistic_loss(model, data) < before - 0.5


@pytest.mark.parametrize(
    "loss, activation",
    [("logistic", "sigmoid"), ("squared", "identity"), ("multinomial", "sigmoid")],
)
def test_full_losses_match_numpy_with_user_nodes_and_the_penalty(loss, activation):
    # Six users, one empty, a value of 2, and four padding rows (row index -1) in the batch.
    rng = np.random.default_rng(5)
    dense = (rng.random((6, N_ITEMS)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0
    dense[3] = 0.0
    dense[1, 5] = 2.0
    model = CDAE(hidden_dim=6, activation=activation, loss=loss, l2=1e-3, n_users=6, seed=0)
    model.compile(optimizer="adam")
    model.build((None, N_ITEMS))
    model.user_embedding.assign(rng.normal(size=(6, 6)))
    batches = sparse_batches(sp.csr_matrix(dense), 10, with_rows=True)
    results = model.evaluate(batches, return_dict=True, verbose=0)

    outputs = numpy_outputs(model, dense, users=np.arange(6))
    if loss == "logistic":
        p = sigmoid(outputs)
        per_user = -(dense * np.log(p) + (1 - dense) * np.log(1 - p)).sum(axis=1)
    elif loss == "squared":
        per_user = ((dense - outputs) ** 2).sum(axis=1)
    else:
        per_user = -(dense * log_softmax(outputs)).sum(axis=1)
    present = dense.sum(axis=1) > 0
    reconstruction = per_user[present].mean()
    penalty = numpy_penalty(model)
    assert penalty > 1e-3
    assert results["reconstruction"] == pytest.approx(reconstruction, rel=1e-5)
    assert results["loss"] == pytest.approx(reconstruction + penalty, rel=1e-5)


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_sampled_loss_matches_numpy_on_the_observed_and_accepted_negatives(loss):
    rng = np.random.default_rng(6)
    dense = (rng.random((5, 12)) < 0.4).astype(np.float32)
    dense[:, 0] = 1.0
    dense[2] = 0.0
    dense[4, 1] = 3.0
    model = CDAE(hidden_dim=4, loss=loss, negative_ratio=3, n_users=5, seed=3)
    model.build((None, 12))
    model.user_embedding.assign(rng.normal(size=(5, 4)))
    x = tf.sparse.from_dense(dense)
    users = tf.constant([4, 3, 2, 1, -1])
    rows, items, accepted = (t.numpy() for t in model.negative_samples(x))
    observed = x.indices.numpy()
    assert len(rows) == 3 * len(observed)
    np.testing.assert_array_equal(rows, np.repeat(observed[:, 0], 3))
    np.testing.assert_array_equal(accepted, (dense[rows, items] == 0).astype(np.float32))
    assert 0 < accepted.sum() < len(accepted)

    per_user = model.user_losses(x, users, negatives=(rows, items, accepted)).numpy()
    outputs = numpy_outputs(model, dense, users=users.numpy())

    def pointwise(output, label):
        if loss == "logistic":
            return -(label * np.log(sigmoid(output)) + (1 - label) * np.log(1 - sigmoid(output)))
        return (label - output) ** 2

    expected = np.zeros(5)
    for r, c in observed:
        expected[r] += pointwise(outputs[r, c], dense[r, c])
    for r, c, keep in zip(rows, items, accepted):
        expected[r] += keep * pointwise(outputs[r, c], 0.0)
    assert expected[2] == 0.0
    np.testing.assert_allclose(per_user, expected, rtol=1e-5)


def test_negative_samples_are_uniform_over_the_catalogue():
    dense = np.zeros((2, 10), np.float32)
    dense[0, :2] = 1.0
    dense[1, 5] = 1.0
    model = CDAE(hidden_dim=2, negative_ratio=2000, n_users=2, seed=0)
    model.build((None, 10))
    rows, items, accepted = (t.numpy() for t in model.negative_samples(tf.sparse.from_dense(dense)))
    counts = np.bincount(items, minlength=10)
    # 6,000 draws over 10 items: 600 expected each, standard deviation about 23.
    assert np.abs(counts - 600).max() < 120
    assert not accepted[(rows == 0) & (items < 2)].any()
    assert accepted[(rows == 0) & (items >= 2)].all()
    assert not accepted[(rows == 1) & (items == 5)].any()


@pytest.mark.parametrize("loss", ["logistic", "squared", "multinomial"])
def test_output_biases_start_at_the_best_constant_prediction(data, loss):
    model = CDAE(hidden_dim=4, loss=loss, seed=0)
    model.set_user_ids(data.user_ids)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    batches = model.training_batches(data.matrix, data.n_users, shuffle=False)
    model.fit(batches, epochs=1, verbose=0)
    density = data.matrix.sum() / (data.n_users * data.n_items)
    expected = {"logistic": np.log(density / (1 - density)), "squared": density}.get(loss, 0.0)
    np.testing.assert_allclose(model.output_layer.bias.numpy(), expected, rtol=1e-5)
    # Only before the first update.
    model.output_layer.bias.assign(np.full(N_ITEMS, 0.5))
    model.fit(batches, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.output_layer.bias.numpy(), 0.5)


def test_fold_in_scores_with_the_user_node_at_zero(trained, data):
    model, _ = trained
    x = batch(data, slice(0, 6))
    dense = data.matrix[:6].toarray()
    users = np.array([0, 1, 2, 3, 4, -1])
    scores = model(x).numpy()
    np.testing.assert_allclose(scores, numpy_outputs(model, dense), rtol=1e-4, atol=1e-5)
    with_users = model.score_users(x, tf.constant(users)).numpy()
    np.testing.assert_allclose(with_users, numpy_outputs(model, dense, users), rtol=1e-4, atol=1e-5)
    assert np.abs(with_users[:5] - scores[:5]).max() > 1e-3
    np.testing.assert_allclose(with_users[5], scores[5], rtol=1e-6)
    np.testing.assert_array_equal(model(x, training=False).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)


def test_evaluation_ranks_known_users_with_their_nodes(trained, data):
    model, _ = trained
    users = np.arange(12)
    inputs = data.matrix[users]
    # The last three rows carry ids the model never saw: they are scored with the node at zero.
    user_ids = np.asarray(data.user_ids)[users].copy()
    user_ids[-3:] = np.max(data.user_ids) + np.arange(1, 4)
    node_rows = np.where(users < 9, users, -1)
    k = 5
    scores = numpy_outputs(model, inputs.toarray(), node_rows)
    scores[inputs.toarray() > 0] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    # Targets: each user's k best items, so recall@k is 1 exactly when the ranking agrees.
    targets = sp.csr_matrix(
        (np.ones(expected.size), expected.ravel(), np.arange(0, expected.size + 1, k)),
        shape=inputs.shape,
    )
    eval_set = EvalSet(inputs, targets, user_ids, np.zeros(len(users), np.int64))
    results = evaluate_ranking(model, eval_set, metrics=[f"recall@{k}"], batch_size=5)
    assert results[f"recall@{k}"] == pytest.approx(1.0)
    rows = training_user_rows(model, user_ids)
    np.testing.assert_array_equal(rows, node_rows)
    top = top_k_items(model, inputs, k, batch_size=5, user_indices=rows)
    np.testing.assert_array_equal(top, expected)
    # Without the nodes the ranking of the known users differs.
    assert np.any(top_k_items(model, inputs, k, batch_size=5)[:9] != expected[:9])


def test_user_ids_set_the_number_of_user_nodes():
    model = CDAE(hidden_dim=4)
    model.set_user_ids(["u1", "u2", "u3"])
    assert model.n_users == 3 and model.get_config()["n_users"] == 3
    assert model.user_ids.dtype == object
    with pytest.raises(ValueError, match=r"one id per user node of the model \(3\). Received: 2"):
        model.set_user_ids(["a", "b"])
    unnamed = CDAE(hidden_dim=4, n_users=4)
    unnamed.build((None, 7))
    np.testing.assert_array_equal(unnamed.user_ids, np.arange(4))
    with pytest.raises(ValueError, match="CDAE needs the number of training users"):
        CDAE(hidden_dim=4).build((None, 7))


def test_fit_on_batches_without_rows_says_what_to_use(data):
    model = CDAE(hidden_dim=4, n_users=data.n_users)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"fit it on\s+`model.training_batches"):
        model.fit(sparse_batches(data.matrix, BATCH), epochs=1, verbose=0)


def test_is_trained_after_an_optimizer_step(trained):
    model = CDAE(hidden_dim=4, n_users=3)
    model.build((None, N_ITEMS))
    assert not model.is_trained()
    assert trained[0].is_trained()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"corruption": 1.0}, "`corruption` should be in [0, 1). Received: corruption=1.0"),
        ({"hidden_dim": 0}, "`hidden_dim` should be a positive integer. Received: hidden_dim=0"),
        ({"activation": "relu"}, "`activation` should be one of ['sigmoid', 'identity']."),
        ({"loss": "hinge"}, "`loss` should be one of ['logistic', 'squared', 'multinomial']."),
        ({"negative_ratio": 0}, "`negative_ratio` should be a positive integer or None."),
        (
            {"negative_ratio": 5, "loss": "multinomial"},
            "`negative_ratio` applies to the logistic and squared losses",
        ),
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
        ({"n_users": 0}, "`n_users` should be a positive integer or None. Received: n_users=0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        CDAE(**kwargs)
    assert message in str(error.value)

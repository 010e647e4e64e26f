"""Classifiers on text features: the text discriminator and the context figures.

Both use a logistic regression on the TF-IDF features of ``_text_features`` (linear models are the standard
for sparse n-gram features), fitted by stochastic gradient descent: on 2 x 4,800 tweets it scores the same
AUC as lbfgs or liblinear (0.99 within 0.003) in 1 s instead of 17 to 20 s. Several classes are fitted one
against the rest.

- Discriminator: cross-validated (3 folds) ROC AUC of telling original texts from synthetic (or holdout)
  texts, on equally many of each; 0.5 means indistinguishable. Equal texts share a fold.
- Context: a classifier learns on the original rows to predict a context column (as its univariate buckets:
  the 10 most frequent categories, "(other)" and NULL, or about 10 quantile buckets of a number) from the
  text, and is scored on the synthetic rows and on the holdout rows by the macro one-vs-rest ROC AUC over the
  buckets present in the scored rows (for two buckets, the plain AUC). Synthetic text that still carries the
  signs of its row's context scores as high as the holdout; text generated without regard to it scores 0.5.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import PredefinedSplit, cross_val_score

_N_FOLDS = 3
# Light L2 regularisation: the features are many (about 130,000 for 16,000 tweets) and mostly rare.
_ALPHA = 1e-5
# Passes over the data: on tweets 3 passes already give the AUCs of a fit to convergence (within 0.002), at a
# fifth of its time. Small data gets more passes, so that every fit makes at least _MIN_UPDATES steps.
_EPOCHS = 3
_MIN_UPDATES = 50_000
_MAX_EPOCHS = 1000


def _classifier(n_rows: int, rng: np.random.RandomState) -> SGDClassifier:
    epochs = int(np.clip(-(-_MIN_UPDATES // max(n_rows, 1)), _EPOCHS, _MAX_EPOCHS))
    return SGDClassifier(
        loss="log_loss", alpha=_ALPHA, max_iter=epochs, tol=None, random_state=rng.randint(np.iinfo(np.int32).max)
    )


def text_discriminator_auc(
    original: sp.csr_matrix,
    other: sp.csr_matrix,
    groups: tuple[np.ndarray, np.ndarray],
    *,
    max_rows: int,
    rng: np.random.RandomState,
) -> float | None:
    """Cross-validated AUC of a classifier separating original from other texts.

    ``groups`` holds an id per original and per other text, equal for equal texts: equal texts always fall
    into the same fold. Otherwise a text copied into the synthetic data would be learned as "original" from
    one fold and tested as "synthetic" in another, and copied data would score far below 0.5 instead of 0.5.
    None when either side has fewer than 3 texts, or a fold would lack one of the two sides.
    """
    n = min(original.shape[0], other.shape[0], max_rows)
    if n < _N_FOLDS:
        return None
    chosen_original = np.sort(rng.choice(original.shape[0], size=n, replace=False))
    chosen_other = np.sort(rng.choice(other.shape[0], size=n, replace=False))
    features = sp.vstack([original[chosen_original], other[chosen_other]], format="csr")
    labels = np.repeat([0, 1], n)
    _, group = np.unique(np.concatenate([groups[0][chosen_original], groups[1][chosen_other]]), return_inverse=True)
    fold = rng.permutation(group.max() + 1)[group] % _N_FOLDS
    if any(len(np.unique(labels[fold == k])) < 2 for k in range(_N_FOLDS)):
        return None
    scores = cross_val_score(_classifier(2 * n, rng), features, labels, cv=PredefinedSplit(fold), scoring="roc_auc")
    return float(scores.mean())


def context_aucs(
    training: tuple[sp.csr_matrix, np.ndarray],
    scored: dict[str, tuple[sp.csr_matrix, np.ndarray]],
    *,
    max_rows: int,
    rng: np.random.RandomState,
) -> dict[str, float | None]:
    """Train on ``training`` (features, bucket codes) and score every frame of ``scored``.

    A frame scores None when no bucket of the classifier appears in it beside another bucket; every frame
    scores None when the training rows hold a single bucket (there is nothing to predict).
    """
    features, labels = training
    if features.shape[0] > max_rows:
        rows = np.sort(rng.choice(features.shape[0], size=max_rows, replace=False))
        features, labels = features[rows], labels[rows]
    if len(np.unique(labels)) < 2:
        return dict.fromkeys(scored)
    model = _classifier(features.shape[0], rng).fit(features, labels)
    return {name: _macro_auc(model, x, y) for name, (x, y) in scored.items()}


def _macro_auc(model: SGDClassifier, features: sp.csr_matrix, labels: np.ndarray) -> float | None:
    probabilities = model.predict_proba(features)
    classes = model.classes_
    if len(classes) == 2:
        # one column suffices: the AUC of class 1 against class 0 is that of class 0 against class 1
        classes, probabilities = classes[1:], probabilities[:, 1:]
    aucs = []
    for position, label in enumerate(classes):
        is_label = labels == label
        if is_label.any() and not is_label.all():
            aucs.append(roc_auc_score(is_label, probabilities[:, position]))
    return float(np.mean(aucs)) if aucs else None

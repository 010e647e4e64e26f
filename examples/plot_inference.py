"""
The synthesizer as a classifier
===============================

A fitted :class:`synthgen.TabularSynthesizer` gives exact class probabilities of any categorical column given
any others (``predict_proba``), predictions, log-likelihoods per row and imputation of missing cells.
``max_epochs=2`` keeps this example at about 10 seconds.
"""

# %%
from synthgen import TabularSynthesizer
from synthgen.datasets import load_census

census = load_census()
train = census.sample(frac=0.8, random_state=0)
test = census.drop(train.index)
synth = TabularSynthesizer(max_epochs=2, random_state=0).fit(train)

# %%
# P(income | the other columns) for five test rows, one column per class:
X = test.drop(columns="income")
proba = synth.predict_proba(X.head(5), target="income")
print(synth.predict_classes("income"))
proba

# %%
# Accuracy of the predicted class on the test rows:
accuracy = (synth.predict(X, target="income") == test["income"].to_numpy()).mean()
print(f"accuracy: {accuracy:.3f}")

# %%
# Log-likelihood per row, and imputation of missing cells (only NULL cells are filled):
print(synth.score_samples(test.head(5)))
synth.impute(test.head(5).assign(workclass=None), random_state=0)[["workclass", "occupation"]]

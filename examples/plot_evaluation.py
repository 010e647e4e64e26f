"""
Evaluate synthetic data
=======================

:func:`synthgen.evaluate` measures fidelity (univariate, bivariate and trivariate accuracy, a discriminator's
AUC) and privacy (distance to the closest record, exact copies). A holdout of real rows the synthesizer never
saw gives every figure a reference. ``max_epochs=2`` keeps this example at about 15 seconds.
"""

# %%
from synthgen import TabularSynthesizer, evaluate
from synthgen.datasets import load_census

census = load_census()
train = census.sample(frac=0.8, random_state=0)
holdout = census.drop(train.index)
synth = TabularSynthesizer(max_epochs=2, random_state=0).fit(train)
synthetic = synth.sample(len(train))

result = evaluate(train, synthetic, holdout, random_state=0)
print(result)

# %%
# Single figures are attributes; ``to_frame`` gives one row per figure.
result.to_frame()

# %%
# Per-column accuracies:
result.univariates

# %%
# ``result.to_html("report.html")`` writes one self-contained page with plots.

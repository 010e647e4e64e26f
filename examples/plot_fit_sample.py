"""
Fit a synthesizer and sample from it
====================================

Learn the bundled census sample (10,000 rows of the UCI Adult data) with :class:`synthgen.TabularSynthesizer`
and sample synthetic rows. ``max_epochs=2`` keeps this example at about 10 seconds on one CPU thread; the
default trains to early stopping (about a minute) and gives better data.
"""

# %%
# Fit
# ---
# ``fit`` runs the engine's stages (split, analyze with value protection, encode, train) in a temporary
# workspace; ``verbose=1`` shows a progress bar per stage.
from synthgen import TabularSynthesizer
from synthgen.datasets import load_census

census = load_census()
synth = TabularSynthesizer(max_epochs=2, random_state=0, verbose=1).fit(census)
synth.history_[["epoch", "trn_loss", "val_loss"]]

# %%
# Sample
# ------
# The synthetic rows have the columns and dtypes of the training data.
synthetic = synth.sample(1000)
synthetic.head()

# %%
# Seeded sampling: fix some columns, the model generates the others conditioned on them.
seeded = synth.sample(seed_data=census[["sex", "age"]].head(5))
seeded[["sex", "age", "education", "income"]]

# %%
# Compare a marginal
# ------------------
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3))
ax.hist([census["age"], synthetic["age"]], bins=30, density=True, label=["original", "synthetic"])
ax.set_xlabel("age")
ax.legend()
plt.show()

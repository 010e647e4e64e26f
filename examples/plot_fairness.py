"""
Fair synthetic data
===================

``sample(fairness=...)`` generates a categorical target independently of sensitive columns (statistical
parity): the share of every target class is the same in every group. The fairness metrics of
:mod:`synthgen.evaluation` measure it. ``max_epochs=2`` keeps this example at about 10 seconds.
"""

# %%
from synthgen import TabularSynthesizer
from synthgen.datasets import load_census
from synthgen.evaluation import parity_shares, statistical_parity_difference

census = load_census()
synth = TabularSynthesizer(max_epochs=2, random_state=0).fit(census)

plain = synth.sample(10_000)
fair = synth.sample(10_000, fairness={"target_column": "income", "sensitive_columns": ["sex"]})

# %%
# The gap between the groups' shares of ``>50K``, in the original, a plain and a fair sample:
for name, frame in [("original", census), ("plain", plain), ("fair", fair)]:
    gap = statistical_parity_difference(frame, "income", ["sex"], positive=">50K")
    print(f"{name:>8}: {gap:.3f}")

# %%
# Shares of every class per group in the fair sample:
parity_shares(fair, "income", "sex")

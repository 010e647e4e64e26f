"""
Two tables: planes and their flights
====================================

A two-table synthesizer learns a context table (planes, one row per plane) and a target table of event
sequences (flights, many rows per plane). It generates a sequence of flights for each context row.
``max_epochs=1`` keeps this example at about 15 seconds.
"""

# %%
from synthgen import TabularSynthesizer
from synthgen.datasets import load_flights

planes, flights = load_flights()
synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum", max_epochs=1, random_state=0)
synth.fit(flights, context=planes)

# %%
# Flights for 20 of the training planes, drawn at random:
synthetic = synth.sample(20)
synthetic.head()

# %%
# Number of flights per plane, original and synthetic:
print(flights.groupby("tailnum").size().describe())
print(synthetic.groupby("tailnum").size().describe())

# %%
# Flights for planes the model never saw: pass them as ``context`` (every context column is needed).
new_planes = planes.head(3).assign(tailnum=["NEW1", "NEW2", "NEW3"])
synth.sample(context=new_planes).groupby("tailnum").size()

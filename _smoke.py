import pandas as pd, synthgen as sg, time, torch, joblib, io
torch.set_num_threads(1)
import pandas as pd
from synthgen import LanguageSynthesizer
reviews = pd.DataFrame({"stars": [1, 5, 4, 2] * 50, "review": ["awful", "loved it", "pretty good", "not great"] * 50})
t=time.time()
synth = LanguageSynthesizer(tgt_encoding_types={"review": "LANGUAGE_TEXT"}, max_epochs=1, random_state=0).fit(reviews)
print(time.time()-t)
print(synth.sample(3))
b=io.BytesIO(); joblib.dump(synth,b); b.seek(0); s2=joblib.load(b); print(s2.sample(3))

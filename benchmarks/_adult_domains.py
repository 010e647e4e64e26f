"""The public domains of adult: what the UCI documentation (``adult.names``) says each column can hold.

These are written out here, not read from the data, because a domain declared to a DP release must be public
knowledge: the category lists are the ones ``adult.names`` documents for the census fields, the ranges are the
census fields' documented limits or generous round bounds. Declaring them is honest for adult (anybody may read
``adult.names``); deriving them from private data would spend privacy outside the ledger.
"""

from __future__ import annotations

ADULT_CATEGORIES = {
    "workclass": ["Federal-gov", "Local-gov", "Never-worked", "Private", "Self-emp-inc", "Self-emp-not-inc",
                  "State-gov", "Without-pay"],
    "education": ["10th", "11th", "12th", "1st-4th", "5th-6th", "7th-8th", "9th", "Assoc-acdm", "Assoc-voc",
                  "Bachelors", "Doctorate", "HS-grad", "Masters", "Preschool", "Prof-school", "Some-college"],
    "marital_status": ["Divorced", "Married-AF-spouse", "Married-civ-spouse", "Married-spouse-absent",
                       "Never-married", "Separated", "Widowed"],
    "occupation": ["Adm-clerical", "Armed-Forces", "Craft-repair", "Exec-managerial", "Farming-fishing",
                   "Handlers-cleaners", "Machine-op-inspct", "Other-service", "Priv-house-serv", "Prof-specialty",
                   "Protective-serv", "Sales", "Tech-support", "Transport-moving"],
    "relationship": ["Husband", "Not-in-family", "Other-relative", "Own-child", "Unmarried", "Wife"],
    "race": ["Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"],
    "sex": ["Female", "Male"],
    "native_country": ["Cambodia", "Canada", "China", "Columbia", "Cuba", "Dominican-Republic", "Ecuador",
                       "El-Salvador", "England", "France", "Germany", "Greece", "Guatemala", "Haiti",
                       "Holand-Netherlands", "Honduras", "Hong", "Hungary", "India", "Iran", "Ireland", "Italy",
                       "Jamaica", "Japan", "Laos", "Mexico", "Nicaragua", "Outlying-US(Guam-USVI-etc)", "Peru",
                       "Philippines", "Poland", "Portugal", "Puerto-Rico", "Scotland", "South", "Taiwan",
                       "Thailand", "Trinadad&Tobago", "United-States", "Vietnam", "Yugoslavia"],
    "income": ["<=50K", ">50K"],
}

# Ranges: the fields' documented limits (education_num 1-16, capital_gain's top code 99,999, hours 1-99) or
# generous round bounds (age 0-100, fnlwgt 0-1,500,000, capital_loss 0-5,000).
ADULT_RANGES = {"age": (0, 100), "fnlwgt": (0, 1_500_000), "education_num": (1, 16), "capital_gain": (0, 99_999),
                "capital_loss": (0, 5_000), "hours_per_week": (1, 99)}

ADULT_DOMAINS = ADULT_CATEGORIES | ADULT_RANGES

"""Annotation collections: several people label a set of real clips, helped by the model's stored pre-labels,
into the durable store; agreement figures; export to a Hugging Face dataset (issue #16). No model code is
imported here: only prelabel.py loads it, inside its functions."""

"""The fixed train / held-out split of the Brown corpus used for models/olmo2-tiny.

Documents are the 500 Brown files in sorted order (ca01 .. cr09) as written by
extract_brown.js to data/brown.jsonl. Held out: every 20th document, i.e.
indices 19, 39, ..., 499 (25 documents = 5%, spread over all 15 genres);
the other 475 are for training (tokenizer and model)."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "brown.jsonl")
EOS = "<|endoftext|>"


def is_heldout(index):
    return index % 20 == 19


def load_split(path=DATA):
    with open(path, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    assert len(docs) == 500, len(docs)
    train = [d for i, d in enumerate(docs) if not is_heldout(i)]
    held = [d for i, d in enumerate(docs) if is_heldout(i)]
    return train, held

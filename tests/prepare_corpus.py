"""Small fixed corpora for the prepare tests: documents about four distinct topics, and a finished
factory output (a published run: documents/ + manifest.json) made from them without running the factory."""
from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TOPICS = {
    "astronomy": "telescope galaxy orbit planet star comet nebula gravity astronomer moon solar eclipse "
                 "spectrum supernova asteroid cosmic universe observatory light-year satellite",
    "cooking": "recipe oven flour butter garlic onion simmer sauce pan dough bake salt pepper kitchen "
               "chef roast boil vegetables spoon taste",
    "football": "goal striker referee penalty match league stadium coach defender midfield tackle "
                "season fans kick score tournament captain keeper offside pitch",
    "finance": "bond equity interest inflation portfolio dividend market investor bank loan credit "
               "currency yield stock risk budget tax asset fund trading",
}
TEMPLATES = [
    "The {0} and the {1} were discussed in detail, together with the {2}.",
    "Many people think that a {0} needs a {1} before the {2} can begin.",
    "In this report we describe how the {0} changed the {1} and the {2}.",
    "A new {0} was shown to affect the {1}, while the {2} stayed the same.",
    "Experts compared the {0} with the {1} and found the {2} to be important.",
]


def topic_document(topic: str, rng: random.Random, sentences: int) -> str:
    words = TOPICS[topic].split()
    return " ".join(rng.choice(TEMPLATES).format(*rng.sample(words, 3)) for _ in range(sentences))


def topic_corpus(per_topic: int, seed: int = 0, min_sentences: int = 3, max_sentences: int = 8) -> list[tuple[str, str]]:
    """[(topic, text)], ``per_topic`` documents per topic, interleaved."""
    rng = random.Random(seed)
    return [
        (topic, topic_document(topic, rng, rng.randint(min_sentences, max_sentences)))
        for _ in range(per_topic) for topic in TOPICS
    ]


def write_factory_output(out: Path, domain_docs: list[str], general_docs: list[str],
                         drop: tuple[str, ...] = (), files: int = 2) -> Path:
    """A finished factory output, published the way the factory publishes one (a version ``runs/<id>`` behind
    ``CURRENT``): documents/*.parquet with the kept-document contract (less the columns in ``drop``) and a
    manifest; returns ``out``. The documents are cut into ``files`` files."""
    from pydantic import BaseModel

    from core.run import PublishedRun

    class Documents(BaseModel):
        documents: int

    rows = [(f"d{i}", text, "papers", "domain") for i, text in enumerate(domain_docs)]
    rows += [(f"g{i}", text, "news", "general") for i, text in enumerate(general_docs)]
    ids, texts, sources, domains = map(list, zip(*rows))
    table = pa.table({
        "id": ids, "text": texts, "source": sources, "domain": domains, "meta": ["{}"] * len(rows),
        "dup_cluster": [None] * len(rows), "dup_cluster_size": pa.array([None] * len(rows), pa.int64()),
    }).drop_columns(list(drop))
    run = PublishedRun(out, Documents(documents=len(rows)), "factory run", overwrite=True)
    with run.writing([]) as partial:
        (partial / "documents").mkdir()
        bounds = [len(rows) * index // files for index in range(files + 1)]
        for index in range(files):
            pq.write_table(table.slice(bounds[index], bounds[index + 1] - bounds[index]),
                           partial / "documents" / f"part-{index}.parquet")
        run.manifest.update(stages=[{"stage": "read", "in": len(rows), "out": len(rows), "dropped": {}}],
                            outputs={"documents": {"path": "documents", "rows": len(rows)}})
    return out


def train_test_tokenizer(texts: list[str], path: Path, vocab_size: int = 600) -> Path:
    """A small byte-level BPE trained on the fly, saved as a transformers tokenizer directory."""
    from factory.prepare.tokenize import train_tokenizer

    return train_tokenizer(texts, vocab_size, "<|endoftext|>", path)

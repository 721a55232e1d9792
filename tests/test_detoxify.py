"""Detoxify through fairaudit, offline, on a tiny checkpoint in Detoxify's own format.

The checkpoint is a two-layer BERT with a WordPiece vocabulary written here, saved with the keys
Detoxify's released checkpoints have (``config.arch.args``, ``config.dataset.args.classes``,
``state_dict``). Nothing is mocked: fairaudit's loading and batching code runs on it, and its
scores are checked against the same transformers model run directly, one text at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("detoxify")

from fairaudit.config import ModelConfig  # noqa: E402
from fairaudit.exceptions import ModelError  # noqa: E402
from fairaudit.scoring import DetoxifyScorer, score_corpus  # noqa: E402

WORDS = (
    "you are a the and is to of it in that i we they he she this so my me your on for with not "
    "what be at go good bad hate love stupid idiot kill die trash nice day friend phone work "
    "after all up pull finna ain't lol rt hello there have eat who coming say about us them"
).split()
ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
MAX_POSITIONS = 24


def build_tiny_checkpoint(
    folder: Path,
    *,
    classes: list[str] | None = None,
    seed: int = 0,
    max_positions: int = MAX_POSITIONS,
) -> tuple[Path, Path]:
    """Write ``folder/tiny.ckpt`` (Detoxify format) and ``folder/config`` (HF config, vocab).

    Returns the checkpoint path and the config folder.
    """
    classes = classes or ORIGINAL_CLASSES
    config_dir = folder / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocabulary += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz'"]
    vocabulary += list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'@#&;:")
    vocabulary = list(dict.fromkeys(vocabulary))
    (config_dir / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    config = transformers.BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_positions,
        num_labels=len(classes),
    )
    config.save_pretrained(config_dir)
    tokenizer = transformers.BertTokenizer(
        vocab_file=str(config_dir / "vocab.txt"), do_lower_case=True
    )
    tokenizer.save_pretrained(config_dir)
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    checkpoint = folder / "tiny.ckpt"
    torch.save(
        {
            "config": {
                "arch": {
                    "type": "Classifier",
                    "args": {
                        "model_type": "bert-base-uncased",
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(classes),
                    },
                },
                "dataset": {"type": "JigsawDataOriginal", "args": {"classes": classes}},
            },
            "state_dict": model.state_dict(),
        },
        checkpoint,
    )
    return checkpoint, config_dir


def direct_scores(checkpoint: Path, config_dir: Path, texts: list[str]) -> np.ndarray:
    """The same network run directly: sigmoid of the logits, one text at a time."""
    loaded = torch.load(checkpoint, weights_only=True)
    config = transformers.BertConfig.from_pretrained(config_dir)
    model = transformers.BertForSequenceClassification(config)
    model.load_state_dict(loaded["state_dict"])
    model.eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(config_dir)
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs = tokenizer(
                text, return_tensors="pt", truncation=True, max_length=MAX_POSITIONS
            )
            rows.append(torch.sigmoid(model(**inputs).logits)[0].numpy())
    return np.array(rows, dtype=np.float64)


TEXTS = [
    "hello there, have a nice day",
    "you are a stupid idiot",
    "I hate all of them, they should die",
    "we finna eat 🍗\nwho coming",
    "&amp; RT @someone: that's trash lol",
    "Hassan is picking me up after work",
    "hello " * 60,  # longer than the 24 positions: truncated
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("detoxify"))


def _corpus(texts: list[str], **columns: list[object]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"text": texts, "row": np.arange(1, len(texts) + 1), **columns},
        index=pd.Index([f"t{i}" for i in range(len(texts))], name="id", dtype=object),
    )
    return frame


def _model(tiny: tuple[Path, Path], **options: object) -> ModelConfig:
    checkpoint, config_dir = tiny
    settings: dict[str, object] = {
        "name": "detoxify-tiny",
        "kind": "detoxify",
        "score": "toxicity",
        "checkpoint_path": str(checkpoint),
        "huggingface_config_path": str(config_dir),
        "device": "cpu",
        "batch_size": 3,
    }
    settings.update(options)
    return ModelConfig.model_validate(settings)


def test_offline_scores_equal_the_network_run_directly(tiny: tuple[Path, Path]) -> None:
    checkpoint, config_dir = tiny
    scorer = DetoxifyScorer(
        "d",
        checkpoint_path=checkpoint,
        huggingface_config_path=config_dir,
        device="cpu",
        batch_size=3,
    )
    # Detoxify's own names for the Jigsaw classes, in the checkpoint's order.
    assert scorer.heads[:-1] == (
        "toxicity",
        "severe_toxicity",
        "obscene",
        "threat",
        "insult",
        "identity_attack",
    )
    expected = direct_scores(checkpoint, config_dir, TEXTS)
    np.testing.assert_allclose(scorer.score(TEXTS), expected, atol=1e-5)
    assert not scorer._model.training


def test_score_corpus_audits_the_named_head_and_keeps_every_head(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, config_dir = tiny
    expected = direct_scores(checkpoint, config_dir, TEXTS)
    corpus = _corpus(TEXTS)
    result = score_corpus(
        corpus, [_model(tiny, score="insult", threshold=0.5)], cache_dir=tmp_path, progress=False
    )
    np.testing.assert_allclose(result.scores["score"], expected[:, 4], atol=1e-5)
    assert (result.scores["head"] == "P(insult)").all()
    np.testing.assert_array_equal(result.scores["flagged"], expected[:, 4] >= 0.5)
    wide = result.head_scores.pivot(index="id", columns="head", values="score").loc[corpus.index]
    assert sorted(wide.columns) == sorted(
        ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
    )
    np.testing.assert_allclose(wide["threat"], expected[:, 3], atol=1e-5)
    assert result.provenance["detoxify-tiny"]["texts_truncated"] == 1
    assert any(
        "1 text(s) longer" in note and "t6" in note for note in result.notes["detoxify-tiny"]
    )


def test_batch_size_and_order_do_not_change_scores(tiny: tuple[Path, Path]) -> None:
    checkpoint, config_dir = tiny
    one = DetoxifyScorer(
        "a", checkpoint_path=checkpoint, huggingface_config_path=config_dir, batch_size=1
    )
    many = DetoxifyScorer(
        "b", checkpoint_path=checkpoint, huggingface_config_path=config_dir, batch_size=64
    )
    np.testing.assert_allclose(one.score(TEXTS), many.score(TEXTS[::-1])[::-1], atol=1e-5)
    np.testing.assert_array_equal(one.score(TEXTS), one.score(TEXTS))


def test_heads_of_an_unbiased_style_checkpoint(tmp_path: Path) -> None:
    classes = [
        "toxicity",
        "severe_toxicity",
        "obscene",
        "identity_attack",
        "insult",
        "threat",
        "sexual_explicit",
    ]
    tiny = build_tiny_checkpoint(tmp_path, classes=classes, seed=1)
    corpus = _corpus(TEXTS[:3])
    result = score_corpus(
        corpus, [_model(tiny, score="sexual_explicit")], cache_dir=tmp_path / "c", progress=False
    )
    expected = direct_scores(*tiny, TEXTS[:3])
    np.testing.assert_allclose(result.scores["score"], expected[:, 6], atol=1e-5)
    assert result.provenance["detoxify-tiny"]["heads"] == classes


def test_a_head_the_checkpoint_lacks_is_an_error(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"'sexual_explicit' is not among .*'toxicity'"):
        score_corpus(
            _corpus(TEXTS[:2]),
            [_model(tiny, score="sexual_explicit")],
            cache_dir=tmp_path,
            progress=False,
        )


def test_cache_scores_each_text_once(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    corpus = _corpus([*TEXTS, TEXTS[0]])
    first = score_corpus(corpus, [_model(tiny)], cache_dir=tmp_path, progress=False)
    record = first.provenance["detoxify-tiny"]
    assert (record["texts_distinct"], record["texts_scored_now"]) == (len(TEXTS), len(TEXTS))
    second = score_corpus(corpus, [_model(tiny)], cache_dir=tmp_path, progress=False)
    assert second.provenance["detoxify-tiny"]["texts_scored_now"] == 0
    assert second.provenance["detoxify-tiny"]["texts_truncated"] == 1
    pd.testing.assert_frame_equal(first.scores, second.scores)
    pd.testing.assert_frame_equal(first.head_scores, second.head_scores)
    # Another head of the same checkpoint comes from the same cache entries.
    third = score_corpus(corpus, [_model(tiny, score="obscene")], cache_dir=tmp_path)
    assert third.provenance["detoxify-tiny"]["texts_scored_now"] == 0
    # A different max_length is a different model identity.
    fourth = score_corpus(corpus, [_model(tiny, max_length=8)], cache_dir=tmp_path, progress=False)
    assert fourth.provenance["detoxify-tiny"]["texts_scored_now"] == len(TEXTS)
    assert fourth.provenance["detoxify-tiny"]["texts_truncated"] > 1


def test_a_changed_checkpoint_is_not_served_from_the_cache(tmp_path: Path) -> None:
    tiny = build_tiny_checkpoint(tmp_path / "m", seed=0)
    corpus = _corpus(TEXTS[:3])
    first = score_corpus(corpus, [_model(tiny)], cache_dir=tmp_path / "c", progress=False)
    build_tiny_checkpoint(tmp_path / "m", seed=7)  # same path, other weights
    second = score_corpus(corpus, [_model(tiny)], cache_dir=tmp_path / "c", progress=False)
    assert second.provenance["detoxify-tiny"]["texts_scored_now"] == 3
    assert not np.allclose(first.scores["score"], second.scores["score"])


def test_replies_are_scored_instead_of_messages(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    replies = TEXTS[::-1][:4]
    corpus = _corpus(TEXTS[:4], reply=replies)
    result = score_corpus(
        corpus, [_model(tiny, reply_column="reply")], cache_dir=tmp_path, progress=False
    )
    expected = direct_scores(*tiny, replies)[:, 0]
    np.testing.assert_allclose(result.scores["score"], expected, atol=1e-5)
    assert result.provenance["detoxify-tiny"]["text_column"] == "reply"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (["fine", "", "ok", "  "], r"2 empty text\(s\).*\['t1', 't3'\]"),
        (["fine", None, "ok", 3], r"2 non-text value\(s\).*\['t1', 't3'\]"),
    ],
)
def test_bad_replies_name_the_model_and_ids(
    tiny: tuple[Path, Path], tmp_path: Path, reply: list[object], message: str
) -> None:
    corpus = _corpus(TEXTS[:4], reply=reply)
    with pytest.raises(ModelError, match=r"model 'detoxify-tiny'.*" + message):
        score_corpus(corpus, [_model(tiny, reply_column="reply")], cache_dir=tmp_path)
    assert not any(tmp_path.glob("*/shard-*.npz"))


@pytest.mark.parametrize("content", ["not a checkpoint", "dict"])
def test_a_checkpoint_of_the_wrong_format_is_a_model_error(
    tiny: tuple[Path, Path], tmp_path: Path, content: str
) -> None:
    path = tmp_path / "bad.ckpt"
    if content == "dict":
        torch.save({"state_dict": {}, "hyper_parameters": {}}, path)
    else:
        path.write_text(content)
    model = _model(tiny, checkpoint_path=str(path))
    with pytest.raises(ModelError, match="model 'detoxify-tiny'.*bad.ckpt"):
        score_corpus(_corpus(TEXTS[:2]), [model], cache_dir=tmp_path / "c")
    assert not any((tmp_path / "c").glob("*/shard-*.npz"))

    optional = _model(tiny, checkpoint_path=str(path), optional=True)
    given = ModelConfig(name="given", kind="column", column="score")
    result = score_corpus(
        _corpus(TEXTS[:2], score=[0.1, 0.9]), [optional, given], cache_dir=tmp_path / "c"
    )
    assert set(result.scores["model"]) == {"given"}
    assert "bad.ckpt" in result.skipped["detoxify-tiny"]
    assert any("optional model skipped" in n for n in result.notes["detoxify-tiny"])


def test_weights_that_do_not_fit_the_config_are_an_error(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, config_dir = tiny
    bigger = tmp_path / "bigger"
    bigger.mkdir()
    for file in config_dir.iterdir():
        (bigger / file.name).write_bytes(file.read_bytes())
    config = transformers.BertConfig.from_pretrained(bigger)
    config.hidden_size = 32
    config.save_pretrained(bigger)
    with pytest.raises(ModelError, match="model 'd': checkpoint weights do not fit"):
        DetoxifyScorer("d", checkpoint_path=checkpoint, huggingface_config_path=bigger)


def test_an_unknown_checkpoint_name_is_a_configuration_error(tmp_path: Path) -> None:
    model = ModelConfig(name="d", kind="detoxify", score="toxicity", checkpoint="huge")
    with pytest.raises(ModelError, match="unknown Detoxify checkpoint 'huge'"):
        score_corpus(_corpus(TEXTS[:1]), [model], cache_dir=tmp_path)

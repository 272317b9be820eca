"""escotag train on the 300-occupation slice: learning, artifacts, calibration, and the leakage rules."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from conftest import base_env, write_labelled
from escotag import ConfigError, Tagger, load_taxonomy
from escotag.errors import LeakageError
from escotag.evaluation.melo import eval_melo
from escotag.evaluation.postings import eval_postings
from escotag.evaluation.protocol import training_languages
from escotag.evaluation.xling import eval_esco_xling
from escotag.learn.training import esco_examples, train
from escotag.learn.tuning import dev_tasks

CHANCE_MRR = sum(1 / r for r in range(1, 301)) / 300  # a random ranking of 300 occupations


@pytest.fixture(scope="module")
def trained_de(tagger):
    return train(tagger.pipeline, ["de", "en"], "De", seed=0, progress=False)


def test_head_beats_chance_and_untrained_on_held_out_labels(trained_de):
    dev = trained_de.manifest["dev"]
    # the check half: held-out labels the head never saw, and not used to choose the head weight
    assert dev["queries_check"] >= 100
    assert dev["trained_mrr"] > dev["untrained_mrr"] > 3 * CHANCE_MRR
    assert trained_de.fusion["head"] > 0


def test_dev_labels_never_reach_training(tagger):
    tasks = dev_tasks(tagger.pipeline, ["de"], seed=0, max_queries=50)
    dropped = tasks[0].dropped
    x, y = esco_examples(tagger.pipeline, ["de"], dropped)
    block = tagger.pipeline.block("de")
    held = [k for k, (o, t) in enumerate(zip(block.labels.views.owner, block.labels.views.texts, strict=True))
            if (int(o), t) in dropped]
    assert held, "the dev split dropped no indexed label"
    all_x, _ = esco_examples(tagger.pipeline, ["de"], set())
    assert len(all_x) - len(x) == len(held)
    for k in held:  # no held-out label is a training example of its occupation
        same = (x == block.labels.vectors[k]).all(axis=1) & (y == block.labels.views.owner[k])
        assert not same.any()


def test_training_is_reproducible_with_a_seed(tagger, trained_de):
    again = train(tagger.pipeline, ["de", "en"], "De", seed=0, progress=False)
    other = train(tagger.pipeline, ["de", "en"], "De", seed=1, progress=False)
    assert np.array_equal(again.head.weights, trained_de.head.weights)
    assert not np.array_equal(other.head.weights, trained_de.head.weights)


def test_manifest_and_escotag_models(models_dir, esco_slice, tmp_path_factory):
    manifest = json.loads((models_dir / "use" / "De" / "manifest.json").read_text())
    assert manifest["languages"] == ["de", "en"] and manifest["seed"] == 3
    assert manifest["config"]["epochs"] >= 1 and manifest["data"]["esco_examples"] > 1000
    assert manifest["dev"]["trained_mrr"] > 0 and "head.npz" in manifest["sha256"]
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_MODELS": str(models_dir),
           "ESCOTAG_HOME": str(tmp_path_factory.getbasetemp() / "escotag-home")}
    done = subprocess.run([sys.executable, "-m", "escotag", "models", "--json"], capture_output=True, text=True,
                          env=env)
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["De"]["trained"] and rows["De"]["trained_on"] == ["de", "en"]
    assert rows["EnV2"]["trained"] and not rows["En"]["trained"] and not rows["Nl"]["trained"]


def test_trained_tagger_gives_calibrated_confidence(models_dir, esco_slice):
    tagger = Tagger(esco_slice, progress=False, models=models_dir)
    preds = tagger.tag(["Bäcker"], "De", topk=5)[0]
    assert preds[0].label_en == "baker"
    confidences = [p.confidence for p in preds]
    assert all(c is not None and 0 <= c <= 1 for c in confidences) and confidences[0] > 0.5  # rounded to 1e-6
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1 + 1e-6
    # min_confidence keeps only the confident ones, and can leave a posting for a person
    sure = tagger.tag(["Bäcker"], "De", topk=5, min_confidence=confidences[0] / 2)[0]
    assert sure and all(p.confidence >= confidences[0] / 2 for p in sure) and len(sure) < 5
    assert tagger.tag(["Bäcker"], "De", topk=5, min_confidence=1.0)[0] == []
    untrained = Tagger(esco_slice, progress=False, models=models_dir, trained=False)
    assert untrained.tag(["Bäcker"], "De")[0][0].confidence is None
    with pytest.raises(ConfigError, match="not trained"):
        tagger.tag(["Elektricien"], "Nl", min_confidence=0.5)


def test_head_reads_titles_alone_with_its_encoders_weight(models_dir, esco_slice):
    from escotag.learn.training import title_head_weight
    from escotag.text.postings import Posting, clean_title

    trained = Tagger(esco_slice, progress=False, models=models_dir)
    untrained = Tagger(esco_slice, progress=False, models=models_dir, trained=False)
    head = trained.trained("De")
    assert head.fusion == {"head": title_head_weight("use", "de")} and head.manifest["format"] == 3
    title = Posting("Bäckerin (m/w/d)")
    lifted = trained.scores([title], "De") - untrained.scores([title], "De")
    expected = head.fusion["head"] * head.head.logits(trained.pipeline.embed([clean_title(title.title)]))
    np.testing.assert_allclose(lifted, expected, rtol=1e-4, atol=1e-4)
    # a posting with a description is scored without the head (it lost on real ads there), only calibrated
    posting = Posting("Bäckerin", "Sie backen Brot und Brötchen in unserer Filiale.")
    np.testing.assert_array_equal(trained.scores([posting], "De"), untrained.scores([posting], "De"))
    assert trained.tag([posting], "De")[0][0].confidence is not None


def test_cli_min_confidence(models_dir, esco_slice, tmp_path_factory):
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_MODELS": str(models_dir),
           "ESCOTAG_HOME": str(tmp_path_factory.getbasetemp() / "escotag-home")}
    done = subprocess.run([sys.executable, "-m", "escotag", "tag", "Bäcker", "-m", "De", "--min-confidence", "0.01",
                           "--json"], capture_output=True, text=True, env=env)
    preds = json.loads(done.stdout)["predictions"]
    assert preds and all(p["confidence"] >= 0.01 for p in preds)


def test_service_confidence_and_min_confidence(models_dir, esco_slice):
    import httpx

    from conftest import serve
    from escotag.service import create_app

    server, thread, base = serve(create_app(Tagger(esco_slice, progress=False, models=models_dir)))
    try:
        r = httpx.post(f"{base}/v1/tag", json={"items": [{"title": "Bäcker"}], "model": "De", "topk": 5})
        occupations = r.json()["items"][0]["occupations"]
        assert occupations[0]["label_en"] == "baker" and 0 < occupations[0]["confidence"] <= 1
        cut = occupations[0]["confidence"] / 2
        r = httpx.post(f"{base}/v1/tag", json={"items": [{"title": "Bäcker"}, {"title": "Bäckerin"}], "model": "De",
                                               "topk": 5, "min_confidence": cut})
        for item in r.json()["items"]:
            assert all(o["confidence"] >= cut for o in item["occupations"])
        models = {m["name"]: m for m in httpx.get(f"{base}/v1/models").json()}
        assert models["De"]["trained_on"] == ["de", "en"] and models["Nl"]["trained_on"] is None
        r = httpx.post(f"{base}/v1/tag", json={"items": [{"title": "x"}], "min_confidence": 1.5})
        assert r.status_code == 422
    finally:
        server.should_exit = True
        thread.join(10)


def test_corrupt_artifact_falls_back_with_a_warning(models_dir, esco_slice, tmp_path, caplog):
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    head = copy / "use" / "De" / "head.npz"
    data = bytearray(head.read_bytes())
    data[-100] ^= 0xFF
    head.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        tagger = Tagger(esco_slice, progress=False, models=copy)
        assert tagger.trained("De") is None
        assert tagger.tag(["Bäcker"], "De")[0][0].confidence is None
    assert "checksum" in caplog.text


def test_a_head_calibrated_with_other_channel_weights_is_not_used(models_dir, esco_slice, caplog):
    from escotag.index.concepts import Weights

    manifest = json.loads((models_dir / "use" / "De" / "manifest.json").read_text())
    assert manifest["channels"] == Weights().channels() == {"description": 0.3, "lexical": 0.3, "posting": 1.0}
    assert Tagger(esco_slice, progress=False, models=models_dir).trained("De") is not None
    with caplog.at_level(logging.WARNING):
        other = Tagger(esco_slice, progress=False, models=models_dir, weights=Weights(lexical=0.0))
        assert other.trained("De") is None  # its calibration was fitted on scores fused another way
    assert "channel weights" in caplog.text


def test_train_missing_keeps_usable_models_and_retrains_broken_ones(models_dir, esco_slice, tmp_path,
                                                                   tmp_path_factory):
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    head = copy / "use" / "De" / "head.npz"
    data = bytearray(head.read_bytes())
    data[-100] ^= 0xFF  # De unusable, EnV2 intact
    head.write_bytes(bytes(data))
    before = (copy / "use" / "EnV2" / "head.npz").read_bytes()
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(esco_slice),
           "ESCOTAG_HOME": str(tmp_path_factory.getbasetemp() / "escotag-home")}
    done = subprocess.run([sys.executable, "-m", "escotag", "train", "-m", "De", "-m", "EnV2", "--missing",
                           "--out", str(copy), "--seed", "3"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "already trained, kept: EnV2" in done.stderr
    assert "De: trained on de+en" in done.stderr and "EnV2: trained" not in done.stderr
    assert (copy / "use" / "EnV2" / "head.npz").read_bytes() == before
    assert Tagger(esco_slice, progress=False, models=copy).trained("De") is not None


# ---- leakage rules ----------------------------------------------------------------------------------


def test_training_language_rules():
    assert training_languages("de", ["de"], ["en", "de", "nl", "ar"]) == ["de", "en"]
    assert training_languages("en", ["en"], ["en", "de"]) == ["en"]
    # cross-lingual: everything but the query language
    assert training_languages("de", ["en"], ["en", "de", "nl", "ar"]) == ["en", "nl", "ar"]


def _melo_folder(root, name, tx, corpus_lang, query_lang):
    folder = root / name
    folder.mkdir()
    occupations = [o for o in tx.occupations if o.labels[query_lang].alt][:30]
    with (folder / "corpus_elements.tsv").open("w") as ce, (folder / "concept_mapping.tsv").open("w") as cm:
        for i, occ in enumerate(occupations):
            ce.write(f"C{i}\t{occ.label(corpus_lang)}\n")
            cm.write(f"C{i}\t{occ.uri}\n")
    (folder / "queries.tsv").write_text("".join(f"Q{i}\t{o.labels[query_lang].alt[0]}\n"
                                                for i, o in enumerate(occupations)))
    (folder / "annotations.tsv").write_text("".join(f"Q{i}\t0\tC{i}\t1\n" for i in range(len(occupations))))
    return folder


def test_cross_lingual_melo_never_uses_a_model_that_saw_the_query_language(models_dir, esco_slice, tmp_path):
    tagger = Tagger(esco_slice, progress=False, models=models_dir)
    assert tagger.trained("De").languages == ("de", "en")
    tx = tagger.taxonomy
    mono = eval_melo(_melo_folder(tmp_path, "tst_q_de_c_de", tx, "de", "de"), tagger, "De")
    assert mono.extra["trained_on"] == "de+en"  # the De model itself: allowed
    xling = eval_melo(_melo_folder(tmp_path, "tst_q_de_c_en", tx, "en", "de"), tagger, "De")
    assert "de" not in xling.extra["trained_on"].split("+")  # retrained without German
    assert set(xling.extra["trained_on"].split("+")) == {"en", "ar", "nl", "pt"}
    untrained = eval_melo(tmp_path / "tst_q_de_c_en", tagger, "De", trained=False)
    assert xling.mrr > untrained.mrr


def test_esco_xling_head_never_saw_the_query_language(tagger):
    trained = eval_esco_xling(tagger, "nl", "labels")
    assert "nl" not in trained.extra["trained_on"].split("+")
    assert trained.mrr > eval_esco_xling(tagger, "nl", "labels", trained=False).mrr


def test_a_model_that_saw_a_language_is_refused_for_it(trained_de):
    with pytest.raises(LeakageError, match="de"):
        trained_de.check_languages(["en", "nl"], "tst_q_de_c_en")
    trained_de.check_languages(["de", "en"], "tst_q_de_c_de")


def test_labelled_postings_train_in_language_only_and_are_refused_at_eval(esco_slice, tmp_path):
    tx = load_taxonomy(esco_slice)
    baker = next(o for o in tx.occupations if o.label() == "baker")
    path = write_labelled(tmp_path / "labelled.csv", [
        ["1", "artisan bread maker", "We bake sourdough bread every night.", baker.uri],
        ["2", "Brotbäcker in Vollzeit", "Wir backen jeden Tag frisches Brot.", baker.uri],
        ["3", "pastry chef", "", "http://data.europa.eu/esco/isco/C7512"],
    ])
    tagger = Tagger(esco_slice, progress=False, models=tmp_path / "models")
    trained = train(tagger.pipeline, ["en"], "EnV2", labelled=path, progress=False, dev_queries=100)
    stats = trained.manifest["data"]["labelled"]
    assert (stats["used"], stats["skipped_other_language"], stats["skipped_no_occupation_gold"]) == (1, 1, 1)
    trained.save(tmp_path / "models" / "use" / "EnV2")
    with pytest.raises(LeakageError, match="trained on 1 of the 3 titles"):
        eval_postings(path, tagger, "EnV2", fields="title")

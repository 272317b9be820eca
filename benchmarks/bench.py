"""Speed benchmark (make bench): index build, training, encoder vs. CLI throughput (untrained and trained), peak
memory with every model loaded (trained unless BENCH_TRAIN=0). Prints a JSON summary.

Postings in another language have no real labelled set here: German ESCO occupations stand in for them (preferred
label as title, description as description; every encoder but mpnet reads only a description's lead, which these
fill), tagged with model De.

Uses the shared evaluation files as realistic inputs; run it on an idle machine. The encoder plan is
ESCOTAG_ENCODER (default fast); raw-encoder figures are given for every encoder of the plan, on titles and on
postings as the pipeline hands them over (title and description lead, or the whole posting for mpnet).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
N_TITLES = int(os.environ.get("BENCH_TITLES", "20000"))
N_POSTINGS = int(os.environ.get("BENCH_POSTINGS", "3000"))  # enough work to dwarf start-up noise
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))  # throughput: the best of this many runs (as timeit does)
TRAIN = os.environ.get("BENCH_TRAIN", "1") != "0"  # 0: skip training and the trained figures (slow plans)
# an ESCOTAG_HOME already built to measure in (its heads, if trained, tag the "untrained" rows too): build_all_seconds
# is then a cached build's, not a first one's
HOME = os.environ.get("BENCH_HOME")


def _cli(*args: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "escotag", *args], check=True, env=env, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _rows(name: str) -> list[dict]:
    with (SHARED / "eval/postings" / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _raw_encoder(name: str, titles: list[str], postings: list[dict]) -> dict[str, float]:
    """One encoder alone, one pass (the slow ones on at most 2,000 titles and 300 postings): titles/s, and
    postings/s on the texts the pipeline gives it for a posting with a description."""
    from escotag.encoders import get_encoder
    from escotag.text.postings import description_lead, whole_posting

    encoder = get_encoder(name)
    encoder.encode(titles[:64])  # warm up
    titles, postings = list(dict.fromkeys(titles))[:2000], postings[:300]
    if getattr(encoder, "reads_whole_postings", False):
        texts = [whole_posting(p["title"], p["description"]) for p in postings]
    else:
        texts = [p["title"] for p in postings] + [description_lead(p["description"], p["title"]) for p in postings]
    started = time.perf_counter()
    encoder.encode(titles)
    middle = time.perf_counter()
    encoder.encode(texts)
    ended = time.perf_counter()
    return {f"raw_{name}_titles_per_s": len(titles) / (middle - started),
            f"raw_{name}_postings_per_s": len(postings) / (ended - middle)}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="escotag-bench-"))
    env = {**os.environ, "ESCOTAG_HOME": HOME or str(work / "home")}
    out: dict[str, float] = {}

    out["build_all_seconds"] = _cli("build", env=env)

    titles = [r["title"] for r in _rows("jobbert_val_titles_en.csv")]
    titles = (titles * (N_TITLES // len(titles) + 1))[:N_TITLES]
    with (work / "titles.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "title"])
        w.writerows(enumerate(titles))
    postings = _rows("aida_genhard_en.csv") + _rows("aida_geneasy_en.csv")
    postings = (postings * (N_POSTINGS // len(postings) + 1))[:N_POSTINGS]
    with (work / "postings.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "description"])
        w.writerows((i, p["title"], p["description"]) for i, p in enumerate(postings))
    out["posting_description_chars_mean"] = sum(len(p["description"]) for p in postings) / len(postings)
    from escotag.esco import load_taxonomy

    german = [(o.labels["de"].preferred, o.labels["de"].description) for o in load_taxonomy().occupations
              if "de" in o.labels and o.labels["de"].description]
    german = (german * (N_POSTINGS // len(german) + 1))[:N_POSTINGS]
    with (work / "postings_de.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "description"])
        w.writerows((i, title, description) for i, (title, description) in enumerate(german))

    def tagging(prefix: str) -> None:
        """CLI throughput; start-up (taxonomy, encoder, indices) measured on a one-row file and subtracted."""
        def best(name: str, model: str = "EnV2") -> float:
            return min(_cli("tag", "-i", str(work / f"{name}.csv"), "-o", str(work / f"{name}.jsonl"), "-m", model,
                            "--overwrite", env=env) for _ in range(REPEAT))

        startup, t_titles, t_posts = best("one"), best("titles"), best("postings")
        # a posting's start-up also loads the encoders that read descriptions (mpnet: ~1-2 s), a title's does not
        posting_startup = best("one_posting")
        out[f"{prefix}cli_startup_seconds"] = startup
        out[f"{prefix}cli_titles_per_s_with_startup"] = N_TITLES / t_titles
        out[f"{prefix}cli_titles_per_s"] = N_TITLES / (t_titles - startup)
        # auto: the language of each title identified, then its model (English here, as for EnV2)
        out[f"{prefix}cli_auto_titles_per_s"] = N_TITLES / (best("titles", "auto") - best("one", "auto"))
        out[f"{prefix}auto_vs_named_titles"] = out[f"{prefix}cli_auto_titles_per_s"] / out[f"{prefix}cli_titles_per_s"]
        out[f"{prefix}cli_postings_per_s_with_startup"] = N_POSTINGS / t_posts
        out[f"{prefix}cli_posting_startup_seconds"] = posting_startup
        out[f"{prefix}cli_postings_per_s"] = N_POSTINGS / (t_posts - posting_startup)
        out[f"{prefix}cli_postings_de_per_s"] = N_POSTINGS / (best("postings_de", "De") - best("one_posting_de", "De"))

    with (work / "one.csv").open("w", encoding="utf-8") as f:
        f.write("id,title\n1,chef\n")
    for name, (title, description) in (("one_posting", (postings[0]["title"], postings[0]["description"])),
                                       ("one_posting_de", german[0])):
        with (work / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("id", "title", "description"), (1, title, description)])
    tagging("")
    if TRAIN:
        out["train_all_seconds"] = _cli("train", "--all", env=env)
        tagging("trained_")
        out["trained_vs_untrained_titles"] = out["trained_cli_titles_per_s"] / out["cli_titles_per_s"]
        out["trained_vs_untrained_postings"] = out["trained_cli_postings_per_s"] / out["cli_postings_per_s"]

    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from escotag.batch.tagging import BATCH_ROWS, MAX_WORKERS
    from escotag.encoders import BATCH_SIZE, get_encoder
    from escotag.encoders.plan import configured_plan
    from escotag.settings import Settings, usable_cores, use_settings

    use_settings(Settings(home=env["ESCOTAG_HOME"]))  # the raw encoders find what the CLI built

    encoder = get_encoder("use")
    encoder.encode(titles[:BATCH_SIZE])
    batches = [titles[i : i + BATCH_ROWS] for i in range(0, len(titles), BATCH_ROWS)]  # the CLI's batches
    cores = min(usable_cores(), MAX_WORKERS)  # as batch.tagging.workers runs this encoder

    def encoding(parallel: bool) -> float:
        """The batches one at a time on every core, or (as the CLI runs this encoder) one per core at once."""
        started = time.perf_counter()
        if parallel:
            with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(cores) as pool:
                list(pool.map(encoder.encode, batches))
        else:
            for batch in batches:
                encoder.encode(batch)
        return time.perf_counter() - started

    # the encoder's best either way: the pipeline's share of the time is not flattered by a slow baseline
    out["use_encoder_titles_per_s_serial"] = N_TITLES / min(encoding(False) for _ in range(REPEAT))
    out["use_encoder_titles_per_s_parallel"] = N_TITLES / min(encoding(True) for _ in range(REPEAT))
    out["use_encoder_titles_per_s"] = max(out["use_encoder_titles_per_s_serial"],
                                          out["use_encoder_titles_per_s_parallel"])
    out["pipeline_vs_use_encoder"] = out["cli_titles_per_s"] / out["use_encoder_titles_per_s"]
    for name in configured_plan().encoders:
        out.update(_raw_encoder(name, titles, postings))

    code = ("import resource; from escotag import Tagger; t = Tagger(progress=False); t.load(); "
            "t.tag(['chef', 'Bäcker', 'محاسب'], 'auto'); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    rss = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    out["peak_rss_mb_all_models"] = float(rss.stdout.strip().splitlines()[-1])
    out["machine_cpus"] = os.cpu_count() or 0
    print(json.dumps({k: round(v, 2) for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()

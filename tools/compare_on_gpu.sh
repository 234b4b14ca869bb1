#!/usr/bin/env bash
# The four-regime comparison (tools/compare_annotators.py) at GPU scale, in at most about
# 8 minutes on one GPU: ResNet-50 at 256 px crops of 256 px renders, bfloat16 compute,
# batch 64, 512 images per set, 400 steps from 3D joints and 500 from 2D. On an H200 the
# four regimes trained at about 270 images/s each; 768 images with 1000 / 2000 steps did
# not finish in 8 minutes. The regimes run as four processes side by side on the one GPU,
# each holding a fifth of its memory, so that their compilations, renders and fits overlap;
# one report then gathers them (compare_annotators.py --report_only). BENCHMARKS.md has
# the numbers.
#
#   tools/compare_on_gpu.sh [OUT_DIR]             # default work_dir/compare_on_gpu
#
# It needs the project's requirements and a CUDA build of jax. On a machine that has jax
# but not the rest, install the missing packages' wheels with pip --target and put that
# folder on PYTHONPATH first; the checkout itself is put on PYTHONPATH here.
#
# OUT_DIR gets COMPARISON_GPU.md, comparison.json and runs.tgz (each run's scores, timings
# and training log, and one log per regime); the runs' work directories go in $WORKDIR
# (default OUT_DIR/runs). The settings can be changed through the environment:
#   IMAGES STEPS WILD_STEPS DEPTH CROP SIZE BATCH DTYPE FIT_BATCH WORKERS BUDGET_S REGIMES,
#   and EXTRA for more of the tool's options (EXTRA="--set train.warm_start.steps=200").
# A dry run on a CPU: DEPTH=18 CROP=64 SIZE=128 IMAGES=48 STEPS=10 WILD_STEPS=10 BATCH=16.
# BUDGET_S (default 420) bounds each regime's process: one still running then is stopped
# (SIGINT: checkpoints are kept, the work directory resumes) and the report shows the runs
# that finished.
set -u
out=$(realpath -m "${1:-work_dir/compare_on_gpu}")     # from the caller's directory
cd "$(dirname "$0")/.."
workdir=$(realpath -m "${WORKDIR:-$out/runs}")
regimes=${REGIMES:-body_3d,body_2d,hand_3d,hand_2d}
mkdir -p "$out" "$workdir"
# The checkout itself, installed or not (a device machine runs it as copied).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

settings=(
  --num_images "${IMAGES:-512}" --steps "${STEPS:-400}" --wild_steps "${WILD_STEPS:-500}"
  --fit_batch "${FIT_BATCH:-256}" --swap 0.05 --drop 0.05 --quiet --workdir "$workdir"
  --set "model.depth=${DEPTH:-50}" --set "model.crop_size=${CROP:-256}"
  --set "dataset.synthetic.size=${SIZE:-256}" --set "train.batch_size=${BATCH:-64}"
  --set "annotate.batch_size=${BATCH:-64}" --set "model.compute_dtype=${DTYPE:-bfloat16}"
  --set "train.num_workers=${WORKERS:-4}"
)
set -f                                   # EXTRA's words are options, never file patterns
read -ra extra <<< "${EXTRA:-}"
settings+=("${extra[@]}")
set +f

python3 -c 'import jax, flax; print("jax", jax.__version__, "flax", flax.__version__, jax.devices())' \
  || exit 1
# Four processes on one GPU: each takes a fifth of its memory instead of JAX's default 75%.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.2}
rm -f "$out/COMPARISON_GPU.md" "$out/comparison.json" "$out/runs.tgz"
start=$(date +%s)
pids=()
for regime in ${regimes//,/ }; do
  timeout -s INT -k 20 "${BUDGET_S:-420}" python3 -u tools/compare_annotators.py \
    --regimes "$regime" "${settings[@]}" --out "$workdir/$regime.md" > "$workdir/$regime.log" 2>&1 &
  pids+=($!)
done
# timeout runs each in its own process group: a Ctrl-C here must reach them too.
trap 'kill -INT "${pids[@]}" 2>/dev/null' INT TERM
wait || wait     # a trapped signal ends the first wait early
echo "runs: $(( $(date +%s) - start )) s"
for regime in ${regimes//,/ }; do
  echo "== $regime"; tr "\r" "\n" < "$workdir/$regime.log" | tail -n 3
done
python3 tools/compare_annotators.py --regimes "$regimes" "${settings[@]}" --report_only \
  --out "$out/COMPARISON_GPU.md" > "$workdir/report.log" 2>&1 || tail -n 20 "$workdir/report.log"
cp "$workdir/comparison.json" "$out/" 2>/dev/null
# The runs' scores, timings and training logs (learning curves), small enough to keep.
(cd "$workdir" && find . \( -name 'comparison*.json' -o -name metrics.jsonl \
  -o -name '*.record.json' -o -name '*.log' \) -print0 | tar czf - --null -T -) > "$out/runs.tgz"
cat "$out/COMPARISON_GPU.md"

#!/usr/bin/env bash
# The learner x scenario x seed runs behind reports/learners.md and the full reports:
#   scripts/learner-runs.sh BIN "SCENARIOS" "SEEDS" "LEARNERS" JOBS
# Each run is runs/sweeps/<scenario>/<learner>-s<seed>. Where `seqmodal tune` chose settings
# (experiments/tuned/<scenario>/<learner>.toml) that file runs, else the scenario's file with
# the learner's defaults. Finished runs (summary.json present) are skipped, so after retuning
# delete runs/sweeps/<scenario> to rerun them. JOBS runs go at once (one training thread each).
set -euo pipefail
bin=$1 scenarios=$2 seeds=$3 learners=$4 jobs=$5
cells=()
for scenario in $scenarios; do
  for seed in $seeds; do
    for learner in $learners; do
      [ -f "runs/sweeps/$scenario/$learner-s$seed/summary.json" ] || cells+=("$scenario $seed $learner")
    done
  done
done
echo "${#cells[@]} runs to do, $jobs at a time"
one() {
  read -r scenario seed learner <<<"$1"
  out=runs/sweeps/$scenario/$learner-s$seed
  tuned=experiments/tuned/$scenario/$learner.toml
  if [ -f "$tuned" ]; then
    args=("$tuned")
  else
    args=("experiments/forgetting/$scenario.toml" --set "learner.kind=$learner")
  fi
  "$BIN" run "${args[@]}" --set "seed=$seed" --out "$out" --quiet --log warn --threads 1 \
    || { echo "FAILED: $out" >&2; return 1; }
}
export -f one
export BIN=$bin
printf '%s\n' "${cells[@]}" | xargs -r -P "$jobs" -I{} bash -c 'one "$@"' _ {}

#!/usr/bin/env bash
# Issue 19: `meta` variants against their `meta_step = false` ablation on one scenario.
#   scripts/meta-ablation.sh BASE.toml OUTDIR JOBS "ORDER..." "SEED..." LABEL=OVERRIDES...
# ORDER is a comma-separated stage list ("file" keeps the base order); OVERRIDES is a
# space-separated list of `--set` assignments (key=value). Each cell is a normal
# `seqmodal run` directory OUTDIR/<label>/<order>/s<seed>; finished cells (summary.json
# present) are skipped, so the script resumes. Summarise with scripts/meta-ablation.py.
set -euo pipefail
base=$1 out=$2 jobs=$3 orders=$4 seeds=$5
shift 5
bin=${SEQMODAL:-target/release/seqmodal}
cells=()
for spec in "$@"; do
  label=${spec%%=*} sets=${spec#*=}
  for order in $orders; do
    for seed in $seeds; do
      cells+=("$label|$sets|$order|$seed")
    done
  done
done
run_cell() {
  IFS='|' read -r label sets order seed <<<"$1"
  dir="$out/$label/$order/s$seed"
  [ -f "$dir/summary.json" ] && return 0
  # Another invocation may be running this cell: leave it alone.
  pgrep -f -- "--out $dir --" >/dev/null && return 0
  mkdir -p "$(dirname "$dir")"
  mkdir "$dir.lock" 2>/dev/null || return 0
  trap 'rmdir "$dir.lock"' RETURN
  args=(run "$base" --set learner.kind=meta --set "seed=$seed" --out "$dir" --quiet --log warn --threads 1)
  for s in $sets; do args+=(--set "$s"); done
  if [ "$order" != file ]; then
    i=0
    for m in ${order//,/ }; do args+=(--set "stages.$i.modality=\"$m\""); i=$((i + 1)); done
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  nice -n 19 "$bin" "${args[@]}" >"$dir.log" 2>&1 || echo "FAILED $dir (see $dir.log)"
}
export -f run_cell
export out base bin
printf '%s\n' "${cells[@]}" | xargs -P "$jobs" -I{} bash -c 'run_cell "$@"' _ {}

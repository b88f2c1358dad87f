#!/bin/sh
# Runs fuzz targets one after the other (one core), each for SECONDS of fuzzing in
# total: if a target stops early (a crash, an OOM, a timeout), the artifact is kept under
# fuzz/artifacts/<target>/ and fuzzing resumes for the time left, up to 3 restarts.
# It runs the binaries `cargo +nightly fuzz build` left (build first), so that changes to
# the sources during the campaign neither rebuild nor change what is fuzzed.
#
#   cargo +nightly fuzz build && fuzz/run-campaign.sh LOGDIR SECONDS target...
#
# Writes LOGDIR/<target>.log (libFuzzer's output) and appends a line per target to
# LOGDIR/summary.tsv: target, seconds, executions, corpus files, exit statuses.
# MALLOC_LIMIT_MB (default 64) sets -malloc_limit_mb, to fuzz past a known allocation.
# MAX_LEN, if set, is passed as -max_len (the decompress targets run with 262144, so that
# inputs large enough to show work out of proportion are tried).
set -u
logdir=$1; secs=$2; shift 2
fuzz=$(cd "$(dirname "$0")" && pwd) || exit 1
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
bin=${FUZZ_BIN_DIR:-$fuzz/target/x86_64-unknown-linux-gnu/release}
for t in "$@"; do
    log="$logdir/$t.log"
    : > "$log"
    start=$(date +%s); runs=0; statuses=""; restarts=0
    while :; do
        now=$(date +%s); left=$((secs - (now - start)))
        [ "$left" -le 5 ] && break
        mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t" "$logdir/$t.run"
        # With -jobs=1 libFuzzer runs one worker that logs to fuzz-0.log in its directory.
        (cd "$logdir/$t.run" && rm -f fuzz-0.log && "$bin/$t" -max_total_time="$left" -jobs=1 \
            -malloc_limit_mb="${MALLOC_LIMIT_MB:-64}" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 ${MAX_LEN:+-max_len=$MAX_LEN} \
            -artifact_prefix="$fuzz/artifacts/$t/" "$fuzz/corpus/$t" >> "$log" 2>&1)
        rc=$?
        cat "$logdir/$t.run/fuzz-0.log" >> "$log" 2>/dev/null
        statuses="$statuses$rc,"
        n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
        runs=$((runs + ${n:-0}))
        # Count each stop's units once: mark what was read.
        sed -i 's/stat::number_of_executed_units:/stat::counted_units:/' "$log"
        [ "$rc" -eq 0 ] && break
        restarts=$((restarts + 1))
        [ "$restarts" -gt 3 ] && break
    done
    end=$(date +%s)
    files=$(ls "$fuzz/corpus/$t" 2>/dev/null | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$((end - start))" "$runs" "$files" "$statuses" \
        >> "$logdir/summary.tsv"
done

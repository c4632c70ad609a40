#!/bin/sh
# fuzz/run.sh BINARY FUZZDIR NAME SECONDS [LIBFUZZER FLAGS...]
# Replay the committed seeds of harness NAME one by one (any crash fails),
# then fuzz for SECONDS starting from them.  New inputs and crash files go
# to fuzz/build/work/NAME/ under the build directory; FUZZDIR/corpus/NAME
# is only read.  The last lines of the log give the run's figures.
set -u
bin=$1 fuzzdir=$2 name=$3 secs=$4
shift 4
seeds=$fuzzdir/corpus/$name
work=fuzz/build/work/$name
dict=$fuzzdir/dict/$name.dict
mkdir -p "$work/corpus"
set -- "$@" -artifact_prefix="$work/"
[ -f "$dict" ] && set -- "$@" -dict="$dict"

echo "fuzz $name: replaying $(ls "$seeds" | wc -l) seeds"
if ! "$bin" "$@" "$seeds"/* >"$work/replay.log" 2>&1; then
    tail -n 60 "$work/replay.log"
    echo "fuzz $name: a seed fails (log: $work/replay.log)"
    exit 1
fi
echo "fuzz $name: fuzzing for $secs s"
if ! nice "$bin" "$@" -max_total_time="$secs" -print_final_stats=1 \
        "$work/corpus" "$seeds" >"$work/fuzz.log" 2>&1; then
    tail -n 80 "$work/fuzz.log"
    echo "fuzz $name: FAILED (log: $work/fuzz.log; crash files: $work/)"
    exit 1
fi
grep -aE '^#[0-9]+[[:space:]]+(INITED|DONE)' "$work/fuzz.log" | tail -n 2
grep -aE '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss)' \
    "$work/fuzz.log"
echo "fuzz $name: ok, corpus now $(ls "$work/corpus" | wc -l) new inputs"

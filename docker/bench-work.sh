#!/bin/sh
# CPU work for one RUN step of Dockerfile.bench (e2e fixture).
# usage: bench-work STEP
# Chains on the previous step's result, hashes BENCH_ROUNDS x BENCH_MIB MiB with
# sha256sum and runs a BENCH_LOOPS-iteration shell arithmetic loop.
set -eu
step=$1
mib=${BENCH_MIB:-16}
rounds=${BENCH_ROUNDS:-5}
loops=${BENCH_LOOPS:-200000}
mkdir -p /bench
prev=$(cat /bench/last 2>/dev/null || cat /bench/seed)
head -c $((mib * 1024 * 1024)) /dev/zero >/tmp/bench.data
h=$prev
i=0
while [ "$i" -lt "$rounds" ]; do
  h=$({ echo "$h"; cat /tmp/bench.data; } | sha256sum | cut -d' ' -f1)
  i=$((i + 1))
done
rm -f /tmp/bench.data
n=0
acc=0
while [ "$n" -lt "$loops" ]; do
  acc=$(((acc * 31 + n) % 1000003))
  n=$((n + 1))
done
echo "step=$step hash=$h acc=$acc uname=$(uname -m)" >>/bench/log
echo "$h" >/bench/last

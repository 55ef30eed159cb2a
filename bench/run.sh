#!/bin/sh
# Build the benchmarks and run them: bench/packet_bench (the plugin's
# per-packet work as a ratio to libsrtp2 srtp_unprotect, issue 4) and
# bench/meter_bench (the meter alone). Measured, not asserted.
#
#   bench/run.sh [packets_per_round [rounds]]     (from a configured tree)
#   BUILD_DIR=/path/to/build bench/run.sh          (out-of-tree build)
#
# Arguments go to packet_bench (defaults 204800 packets, 9 rounds).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-$(dirname "$here")}
cd "$build"
if [ ! -f Makefile ]; then
	echo "run.sh: no Makefile in $build: run ./autogen.sh && ./configure first (or set BUILD_DIR)" >&2
	exit 2
fi
make bench
echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "== bench/packet_bench $*"
bench/packet_bench "$@"
echo
echo "== bench/meter_bench"
bench/meter_bench

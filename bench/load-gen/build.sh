#!/bin/bash
# Build the load generator (bench/load-gen/*.go) offline, with Debian's Go
# (golang-go, 1.19) and Debian's pion/webrtc v3 sources
# (golang-github-pion-webrtc.v3-dev, under /usr/share/gocode/src).
#
# There is no Go module proxy on these machines, so this builds in GOPATH
# mode (GO111MODULE=off) with a private GOPATH: its src/ holds symlinks to
# everything under /usr/share/gocode/src, plus, for each Debian package
# whose go.mod names a module path with a major-version suffix that the
# folder lacks (github.com/pion/webrtc holds module github.com/pion/webrtc/v3),
# a symlink from that module path to the folder. Packages whose folder
# already ends in /v2 (dtls, ice, srtp, turn) need nothing.
#
# Usage: bench/load-gen/build.sh [OUTDIR]     (default: <repo>/build/load-gen)
# Prints the path of the binary. Rebuilds only when a source changed (go's
# own cache, kept in OUTDIR/gocache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/build/load-gen}
src=/usr/share/gocode/src

if ! command -v go >/dev/null 2>&1 || [[ ! -d $src/github.com/pion/webrtc ]]; then
    echo "build.sh: needs golang-go and golang-github-pion-webrtc.v3-dev (conf/install-deps.sh)" >&2
    exit 1
fi

gopath=$out/gopath
mkdir -p "$gopath/src" "$out/gocache"

# Level 1 (github.com, golang.org, ...) and level 2 (github.com/pion, ...)
# are real folders; level 3 (github.com/pion/webrtc, ...) are symlinks,
# except where a versioned module path must be added inside.
while IFS= read -r -d '' d; do
    rel=${d#$src/}
    depth=$(awk -F/ '{print NF}' <<<"$rel")
    if (( depth <= 2 )); then
        mkdir -p "$gopath/src/$rel"
    elif (( depth == 3 )); then
        dst=$gopath/src/$rel
        # a module path with a version suffix this folder lacks?
        mod=""
        [[ -f $d/go.mod ]] && mod=$(awk '$1=="module"{gsub(/"/,"",$2); print $2; exit}' "$d/go.mod")
        if [[ -n $mod && $mod != "$rel" && $mod == "$rel"/v[0-9]* ]]; then
            # github.com/pion/webrtc -> a real folder holding v3 -> the source
            [[ -L $dst ]] && rm -f "$dst"
            mkdir -p "$dst"
            ln -sfn "$d" "$gopath/src/$mod"
        elif [[ ! -e $dst ]]; then
            ln -sfn "$d" "$dst"
        fi
    fi
done < <(find "$src" -mindepth 1 -maxdepth 3 -type d -print0)

export GOPATH=$gopath GO111MODULE=off GOCACHE=$out/gocache GOPROXY=off GOFLAGS=
# the program itself: GOPATH mode builds a package from a folder inside
# GOPATH, so link this folder in as "alliance-load"
ln -sfn "$here" "$gopath/src/alliance-load"
cd "$gopath/src/alliance-load"
go build -trimpath -o "$out/alliance-load" .
echo "$out/alliance-load"

#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer on the STABLE toolchain (see docs/fuzzing.md).
#
#   crates/fuzz/libfuzzer.sh build                 instrumented release build of every target
#   crates/fuzz/libfuzzer.sh run TARGET [ARGS...]  fuzz TARGET; ARGS go to libFuzzer
#                                                  (e.g. -runs=10000000, -max_total_time=600)
#   crates/fuzz/libfuzzer.sh merge TARGET          minimise the working corpus into the
#                                                  committed one (crates/fuzz/corpus/TARGET)
#
# Stable rustc has no -Zsanitizer, but it runs LLVM's SanitizerCoverage pass when asked with
# -Cpasses=sancov-module; libFuzzer (built from source by libfuzzer-sys with the system C++
# compiler) reads the 8-bit counters, the PC table and the compare traces it inserts. The
# explicit --target keeps these flags off build scripts and proc macros. Builds go to their
# own target directory (CARGO_TARGET_DIR, default target/fuzz) so they never thrash the
# normal one. The working corpus lives there too; only `merge` writes the committed corpus.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/fuzz}
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# miniz_oxide allocates ~300 KB per deflate; above glibc's mmap threshold every one is a fresh
# mmap and page faults. A high threshold keeps them on the heap: twice the cookie target's speed.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-8388608} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-16777216}
bin() { echo "$CARGO_TARGET_DIR/$host/release/fuzz_$1"; }

targets="cookie filter policy bodies gateway_path login"

build() {
    # Only the fuzz_* binaries: the plain `tessera-fuzz` runner has no libFuzzer to link with.
    local bins=()
    for t in $targets; do bins+=(--bin "fuzz_$t"); done
    (cd "$root" && cargo build --release --features libfuzzer -p tessera-fuzz "${bins[@]}" --target "$host")
}

case "${1:-}" in
    build) build ;;
    run)
        t=${2:?target}; shift 2
        [ -x "$(bin "$t")" ] || build
        work="$CARGO_TARGET_DIR/corpus/$t"
        mkdir -p "$work" "$CARGO_TARGET_DIR/artifacts/$t"
        exec "$(bin "$t")" -dict="$here/dict/$t.dict" -artifact_prefix="$CARGO_TARGET_DIR/artifacts/$t/" \
            -max_len=4096 -timeout=10 -rss_limit_mb=2048 "$@" "$work" "$here/corpus/$t"
        ;;
    merge)
        t=${2:?target}
        [ -x "$(bin "$t")" ] || build
        fresh=$(mktemp -d)
        "$(bin "$t")" -set_cover_merge=1 -max_len=4096 "$fresh" "$here/corpus/$t" "$CARGO_TARGET_DIR/corpus/$t"
        rm -rf "${here:?}/corpus/$t"
        mkdir -p "$here/corpus/$t"
        cp "$fresh"/* "$here/corpus/$t/"
        rm -rf "$fresh"
        echo "corpus/$t: $(ls "$here/corpus/$t" | wc -l) files, $(du -sh --apparent-size "$here/corpus/$t" | cut -f1)"
        ;;
    *)
        sed -n '2,8p' "$0"
        exit 2
        ;;
esac

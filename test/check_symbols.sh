#!/bin/sh
# Only cw_ symbols may be exported by the shared library.
lib="${top_builddir:-.}/lib/.libs/libclockworker.so"
if [ ! -f "$lib" ]; then
    echo "SKIP: no shared library at $lib"
    exit 77
fi
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^cw_[a-z]' || true)
n=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^cw_[a-z]')
if [ -n "$bad" ]; then
    echo "exported symbols without the cw_ prefix:"
    echo "$bad"
    exit 1
fi
echo "$n exported symbols, all cw_"
[ "$n" -gt 0 ]

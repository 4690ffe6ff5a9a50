#!/bin/sh
# The core without libevent: every public header but the libevent adapters
# (bev.h, http.h, event.h) and every source of lib/core compiles when each of
# libevent's headers is replaced by one that stops the compiler. So the
# core's interface and code name no libevent header, whatever is
# installed. (A type named only by a forward declaration, as libevent.h's
# struct event_base, needs none.)
set -e
srcdir="${srcdir:-.}"
top_builddir="${top_builddir:-.}"
CC="${CC:-cc}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/event2"
# every name libevent installs, and the 1.x compatibility headers
for h in event.h evhttp.h evdns.h evrpc.h evutil.h; do
    echo '#error "a libevent header reached the core"' >"$tmp/$h"
done
for f in /usr/include/event2/*.h; do
    [ -f "$f" ] || continue
    echo '#error "a libevent header reached the core"' >"$tmp/event2/$(basename "$f")"
done
for h in util.h event.h bufferevent.h buffer.h http.h; do
    echo '#error "a libevent header reached the core"' >"$tmp/event2/$h"
done
inc="-I$tmp -I$top_builddir/include -I$srcdir/include -I$top_builddir -I$srcdir/lib -I$srcdir/lib/core"
n=0
for h in clockworker.h $(cd "$srcdir/include" && ls clockworker/*.h); do
    case "$h" in clockworker/bev.h|clockworker/http.h|clockworker/event.h) continue ;; esac
    printf '#include <%s>\nint cw_headers_check_%d;\n' "$h" "$n" >"$tmp/h$n.c"
    $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only $inc "$tmp/h$n.c"
    n=$((n + 1))
done
# The poison is real: a header that includes libevent fails here.
printf '#include <clockworker/bev.h>\n' >"$tmp/bev.c"
if $CC -fsyntax-only $inc "$tmp/bev.c" 2>/dev/null; then
    echo "the poisoned include path let bev.h's libevent headers through"
    exit 1
fi
for c in "$srcdir"/lib/core/*.c; do
    $CC -std=gnu11 -Wall -Wextra -Werror -fsyntax-only -DHAVE_CONFIG_H $inc "$c"
    n=$((n + 1))
done
echo "$n headers and core sources compile with no libevent header"

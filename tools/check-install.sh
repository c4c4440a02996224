#!/usr/bin/env bash
# tools/check-install.sh BUILD_DIR - prove lbkit is usable from outside:
#  1. `meson install` into a temporary prefix, then a program built with
#     `pkg-config --cflags --libs lbkit` against it runs;
#  2. the uninstalled pkg-config file works the same way;
#  3. a meson project that uses lbkit as a subproject builds and runs;
#  4. the shared library exports only lbk_ symbols.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <lbkit/lbkit.h>

int main(void)
{
    lbk_set *set;
    uint32_t slot;
    const lbk_snapshot *snap;
    if (lbk_set_create(NULL, &set) < 0 ||
        lbk_set_add(set, "10.0.0.1:80", 1, NULL, &slot) < 0 ||
        lbk_set_add(set, "10.0.0.2:80", 3, NULL, &slot) < 0 ||
        lbk_set_publish(set) < 0 || lbk_set_acquire(set, &snap) < 0)
        return 1;
    int ok = lbk_snapshot_count(snap) == 2 && lbk_snapshot_total_weight(snap) == 4 &&
             strcmp(lbk_version_string(), LBK_VERSION_STRING) == 0;
    printf("lbkit %s: %u backends\n", lbk_version_string(), lbk_snapshot_count(snap));
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    return ok ? 0 : 1;
}
C

echo "-- installed, through pkg-config"
DESTDIR="$tmp/root" meson install -C "$build" --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
libdir=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
root="$tmp/root$prefix"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export PKG_CONFIG_PATH="$root/$libdir/pkgconfig"
cc "$tmp/app.c" $(pkg-config --cflags --libs lbkit) -o "$tmp/app"
LD_LIBRARY_PATH="$root/$libdir" "$tmp/app"
unset PKG_CONFIG_SYSROOT_DIR

echo "-- uninstalled, through pkg-config"
PKG_CONFIG_PATH="$build/meson-uninstalled" cc "$tmp/app.c" \
    $(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags --libs lbkit) -o "$tmp/app2"
LD_LIBRARY_PATH="$build/lib" "$tmp/app2"

echo "-- as a meson subproject"
mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/lbkit"
cp "$tmp/app.c" "$tmp/proj/app.c"
cat > "$tmp/proj/meson.build" <<'M'
project('app', 'c', default_options: ['c_std=c11'])
lbkit_dep = dependency('lbkit', fallback: ['lbkit', 'lbkit_dep'],
  default_options: ['tests=false', 'examples=false', 'bench=false'])
executable('app', 'app.c', dependencies: lbkit_dep)
M
meson setup "$tmp/proj/build" "$tmp/proj" --force-fallback-for=lbkit >/dev/null
ninja -C "$tmp/proj/build" >/dev/null
"$tmp/proj/build/app"

echo "-- exported symbols"
bad=$(nm -D --defined-only "$build/lib/liblbkit.so" | awk '$2 ~ /[TDBRVW]/ {print $3}' | grep -v '^lbk_' | grep -v '^LBKIT_' || true)
if [ -n "$bad" ]; then echo "non-lbk_ exports: $bad"; exit 1; fi
echo "install check passed"

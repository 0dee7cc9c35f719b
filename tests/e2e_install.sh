#!/usr/bin/env bash
# End to end for `cmake --install`: installs a build into a temporary prefix,
# checks what is installed (files, SONAME, the precision baked into
# dpt/build_config.h, no RPATH needed for bin/dptrain), then builds
# tests/install/tiny_train.c - a user's program on the public API only - the
# two ways a user would and runs each on 2 ranks:
#   1. mpicc + `pkg-config --cflags --libs dptrain`, against libdptrain.so;
#   2. tests/install/CMakeLists.txt, find_package(dptrain CONFIG REQUIRED),
#      against dptrain::dptrain_static (and dptrain::dptrain).
# Finally the prefix is moved elsewhere and still works (dptrain --version,
# pkg-config and the CMake package are relocatable).
#
#   bash tests/e2e_install.sh SOURCE_DIR BUILD_DIR
src=${1:?usage: $0 SOURCE_DIR BUILD_DIR}
build=${2:?usage: $0 SOURCE_DIR BUILD_DIR}
build=$(cd "$build" && pwd)
set -- "$build/dptrain"
source "$src/tests/e2e_lib.sh"

cache=$build/CMakeCache.txt
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -1; }
[[ -f $cache && -x $build/dptrain ]] || { echo "FAIL - $build is not a dptrain build directory"; exit 1; }
if [[ $(cache_value DPT_SANITIZE) == ON ]]; then
  echo "skipped: a sanitizer build (its libraries need the sanitizer runtimes to link)"; exit 77
fi
for tool in mpicc pkg-config readelf cmake; do
  command -v "$tool" >/dev/null || { echo "FAIL - $tool missing"; exit 1; }
done
precision=$(cache_value DPT_PRECISION)
version=$(cache_value CMAKE_PROJECT_VERSION)
libdir=$(cache_value CMAKE_INSTALL_LIBDIR)
includedir=$(cache_value CMAKE_INSTALL_INCLUDEDIR)
bindir=$(cache_value CMAKE_INSTALL_BINDIR)
datadir=$(cache_value CMAKE_INSTALL_DATADIR) # (empty in the cache: DATAROOTDIR's value)
[[ -n $datadir ]] || datadir=$(cache_value CMAKE_INSTALL_DATAROOTDIR)
[[ $precision == double ]] && real=double || real=float
major=${version%%.*} minor=${version#*.}; minor=${minor%%.*}
if [[ $major == 0 ]]; then soversion=$major.$minor; else soversion=$major; fi
mpirun_n2() { timeout -k 10 120 mpirun -n 2 --oversubscribe "$@"; }

# ---- install
prefix=$WORK/prefix
start=$(date +%s.%N)
if cmake --install "$build" --prefix "$prefix" >"$WORK/install.log" 2>&1; then
  ok "cmake --install into a temporary prefix ($(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $start }") s)"
else
  fail "cmake --install" "$WORK/install.log"; finish; exit 1
fi

# ---- the file list: exactly these files
{
  echo "$bindir/dptrain"
  echo "$libdir/libdptrain.a"
  echo "$libdir/libdptrain.so"
  echo "$libdir/libdptrain.so.$soversion"
  echo "$libdir/libdptrain.so.$version"
  for h in "$src"/include/dpt/*.h; do echo "$includedir/dpt/$(basename "$h")"; done
  echo "$includedir/dpt/build_config.h"
  echo "$libdir/pkgconfig/dptrain.pc"
  for f in dptrainConfig.cmake dptrainConfigVersion.cmake dptrainTargets.cmake; do
    echo "$libdir/cmake/dptrain/$f"
  done
  for c in "$src"/configs/*.ini; do echo "$datadir/dptrain/configs/$(basename "$c")"; done
} | sort >"$WORK/expected"
# (plus one dptrainTargets-<build type>.cmake)
(cd "$prefix" && find . \( -type f -o -type l \) | sed 's|^\./||' |
   grep -Ev "^$libdir/cmake/dptrain/dptrainTargets-[a-z]+\.cmake$" | sort) >"$WORK/installed"
if diff "$WORK/expected" "$WORK/installed" >"$WORK/filediff"; then
  ok "installed files: bin/dptrain, libdptrain.{a,so}, $(ls "$src"/include/dpt/*.h | wc -l) + 1 headers, dptrain.pc, CMake package, configs"
else
  fail "installed files differ from the expected list (< missing, > unexpected)" "$WORK/filediff"
fi
if ls "$prefix/$libdir/cmake/dptrain/"dptrainTargets-*.cmake >/dev/null 2>&1; then
  ok "exported targets for the build type"
else
  fail "no dptrainTargets-<build type>.cmake"
fi
lib=$prefix/$libdir
if [[ $(readlink "$lib/libdptrain.so") == "libdptrain.so.$soversion" &&
      $(readlink "$lib/libdptrain.so.$soversion") == "libdptrain.so.$version" ]] &&
   readelf -d "$lib/libdptrain.so.$version" | grep -q "SONAME.*\[libdptrain.so.$soversion\]"; then
  ok "libdptrain.so -> .so.$soversion (SONAME) -> .so.$version"
else
  fail "shared library names" <(ls -l "$lib"; readelf -d "$lib/libdptrain.so.$version" | grep SONAME)
fi
want_double=$([[ $precision == double ]] && echo 1 || echo 0)
expect_grep "dpt/build_config.h says $precision precision" "^#define DPT_BUILD_DOUBLE $want_double\$" \
  "$prefix/$includedir/dpt/build_config.h"
expect_grep "dpt/build_config.h says version $version" "^#define DPT_VERSION_STRING \"$version\"\$" \
  "$prefix/$includedir/dpt/build_config.h"

# ---- bin/dptrain: linked statically against libdptrain, so no RPATH for it
readelf -d "$prefix/$bindir/dptrain" >"$WORK/dyn"
if ! grep -q "libdptrain" "$WORK/dyn" && ! ldd "$prefix/$bindir/dptrain" | grep -q "not found"; then
  ok "bin/dptrain needs no libdptrain.so and ldd finds every library"
else
  fail "bin/dptrain's dynamic section" "$WORK/dyn"
fi
timeout -k 5 60 "$prefix/$bindir/dptrain" --version >"$WORK/version" 2>&1
status=$?
if [[ $status -eq 0 ]] && grep -qx "dptrain $version ($precision precision)" "$WORK/version"; then
  ok "installed dptrain --version: $(cat "$WORK/version")"
else
  fail "installed dptrain --version (exit $status)" "$WORK/version"
fi

# ---- every public header compiles on its own from the installed copy
export PKG_CONFIG_PATH=$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
cflags=$(pkg-config --cflags dptrain) || fail "pkg-config --cflags dptrain"
bad=""
for h in "$prefix/$includedir"/dpt/*.h; do
  printf '#include <dpt/%s>\n' "$(basename "$h")" >"$WORK/one.c"
  mpicc -std=c11 -Wall -Wextra -Werror -fsyntax-only $cflags "$WORK/one.c" >>"$WORK/headers" 2>&1 ||
    bad+=" $(basename "$h")"
done
if [[ -z $bad ]]; then ok "each installed header compiles alone (-std=c11 -Wall -Wextra -Werror)"
else fail "headers that do not compile alone:$bad" "$WORK/headers"; fi
# the precision cannot be contradicted by a stray -D
printf '#include <dpt/real.h>\n' >"$WORK/one.c"
if [[ $precision == single ]]; then
  if mpicc -DDPT_DOUBLE -fsyntax-only $cflags "$WORK/one.c" >"$WORK/mismatch" 2>&1; then
    fail "-DDPT_DOUBLE against a single-precision install compiled"
  else
    expect_grep "-DDPT_DOUBLE against a single-precision install is an #error" "built in single precision" "$WORK/mismatch"
  fi
fi

# ---- 1. mpicc + pkg-config, the shared library
check_run() { # name out
  if [[ $status -eq 0 ]] && grep -q "dpt_real is $real" "$2" &&
     grep -Eq "^tiny_train: [0-9]+ steps: loss .*: learnt$" "$2" && grep -q ", 2 ranks," "$2"; then
    ok "$1: $(grep -o 'loss .*' "$2")"
  else
    fail "$1 (exit $status)" "$2"
  fi
}
if mpicc -std=c11 -Wall -Wextra -Werror -O2 "$src/tests/install/tiny_train.c" \
     $(pkg-config --cflags --libs dptrain) -o "$WORK/tiny_pc" >"$WORK/cc.log" 2>&1; then
  ok "mpicc tiny_train.c \$(pkg-config --cflags --libs dptrain)"
  if readelf -d "$WORK/tiny_pc" | grep -q "NEEDED.*\[libdptrain.so.$soversion\]"; then
    ok "it needs libdptrain.so.$soversion"
  else
    fail "tiny_train (pkg-config) does not need libdptrain.so.$soversion" <(readelf -d "$WORK/tiny_pc")
  fi
  LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} mpirun_n2 -x LD_LIBRARY_PATH \
    "$WORK/tiny_pc" >"$WORK/run_pc" 2>&1
  status=$?
  check_run "pkg-config build, libdptrain.so, 2 ranks" "$WORK/run_pc"
else
  fail "mpicc with pkg-config" "$WORK/cc.log"
fi
# the README's static variant: libdptrain.a by name, the rest from --static
if mpicc -std=c11 -O2 "$src/tests/install/tiny_train.c" $(pkg-config --cflags dptrain) \
     -L"$(pkg-config --variable=libdir dptrain)" -l:libdptrain.a \
     $(pkg-config --static --libs dptrain | sed 's/-ldptrain //') -o "$WORK/tiny_pc_static" >"$WORK/cc2.log" 2>&1 &&
   ! readelf -d "$WORK/tiny_pc_static" | grep -q libdptrain; then
  mpirun_n2 "$WORK/tiny_pc_static" >"$WORK/run_pc_static" 2>&1
  status=$?
  check_run "pkg-config --static build, libdptrain.a, 2 ranks" "$WORK/run_pc_static"
else
  fail "mpicc with -l:libdptrain.a and pkg-config --static" "$WORK/cc2.log"
fi

# ---- 2. a CMake project: find_package(dptrain CONFIG REQUIRED)
consumer=$WORK/consumer
if cmake -S "$src/tests/install" -B "$consumer" -DCMAKE_PREFIX_PATH="$prefix" \
     -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$WORK/consumer.log" 2>&1 &&
   cmake --build "$consumer" >>"$WORK/consumer.log" 2>&1; then
  ok "find_package(dptrain CONFIG REQUIRED): $(grep -o "dptrain $version ([a-z]* precision)" "$WORK/consumer.log")"
  if readelf -d "$consumer/tiny_train" | grep -q libdptrain; then
    fail "tiny_train (dptrain::dptrain_static) needs a libdptrain.so" <(readelf -d "$consumer/tiny_train")
  else
    ok "dptrain::dptrain_static links libdptrain.a"
  fi
  mpirun_n2 "$consumer/tiny_train" optim.method=adam optim.lr=0.01 >"$WORK/run_static" 2>&1
  status=$?
  check_run "CMake build, dptrain::dptrain_static, 2 ranks, adam via an override" "$WORK/run_static"
  mpirun_n2 "$consumer/tiny_train_shared" >"$WORK/run_shared" 2>&1
  status=$?
  check_run "CMake build, dptrain::dptrain (shared, RUNPATH), 2 ranks" "$WORK/run_shared"
else
  fail "the CMake project tests/install" "$WORK/consumer.log"
fi

# ---- the prefix moved elsewhere
moved=$WORK/moved/prefix
mkdir -p "$WORK/moved" && mv "$prefix" "$moved"
export PKG_CONFIG_PATH=$moved/$libdir/pkgconfig
timeout -k 5 60 "$moved/$bindir/dptrain" --version >"$WORK/version2" 2>&1
status=$?
if [[ $status -eq 0 ]] && [[ $(pkg-config --variable=includedir dptrain) -ef $moved/$includedir ]] &&
   grep -q "dptrain_DIR:PATH=$moved/" < <(cmake -S "$src/tests/install" -B "$WORK/consumer2" \
     -DCMAKE_PREFIX_PATH="$moved" >/dev/null 2>&1; cat "$WORK/consumer2/CMakeCache.txt"); then
  ok "a moved prefix: dptrain --version, pkg-config and find_package follow it"
else
  fail "the moved prefix (dptrain --version exit $status, includedir $(pkg-config --variable=includedir dptrain))" "$WORK/version2"
fi

finish

#!/usr/bin/env bash
# check-e2e: real programs under LD_PRELOAD=libhakmem.so, with the built-in configuration and
# every conf/*.ini, give the same results as under glibc: python3's own test suite (a subset,
# PYTHONMALLOC=malloc), git (many commits, gc, fsck), perl (hash and string churn), sqlite3
# (100k rows, index, queries, vacuum), redis-server with redis-benchmark (loopback only), and
# hakmem's own build with gcc. Each case runs once under glibc for the reference, then once per
# configuration; what it prints (its results, never timings) and its exit status must match.
# Prints PASS/FAIL/SKIP per case and a last line "N passed, M failed, K skipped"; exits non-zero
# if anything failed.
#
# Usage: tests/check-e2e/run.sh
# Environment:
#   HAKMEM_LIB=path    library to preload (default build/libhakmem.so, with build/policies)
#   CHECK_FILTER=re    only cases whose name (e.g. "sqlite[option-f]") matches
#   CHECK_CONFS="..."  configurations ("builtin" = no file, else a conf/ name without .ini)
#   CHECK_TIMEOUT=s    per run (default 300)
#   CHECK_KEEP=1       keep the work folder and logs
# Missing Debian packages are installed when run as root; otherwise the apt-get line is printed
# and the cases that need them are skipped. Only the program under test is preloaded.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
LIB=${HAKMEM_LIB:-build/libhakmem.so}
[[ $LIB == /* ]] || LIB=$ROOT/$LIB
[[ -f $LIB ]] || { echo "$LIB is not built: run make first" >&2; exit 2; }
T=${CHECK_TIMEOUT:-300}
mkdir -p "$ROOT/build/tests"
WORK=$(mktemp -d "$ROOT/build/tests/check-e2e.XXXXXX") || exit 2
LOGS=$WORK/logs
mkdir -p "$LOGS"
START=$(date +%s)

# ---- packages --------------------------------------------------------------------------------
# PKG_<case>: the Debian packages a case needs. python3 is Debian's (/usr/bin/python3), whose
# version matches libpython3.X-testsuite, whatever python3 comes first on PATH.
PYV=3.11
[[ -x /usr/bin/python3 ]] && PYV=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3.11)
declare -A PKGS=(
    [python]="python3 libpython$PYV-testsuite"
    [git]="git"
    [perl]="perl"
    [sqlite]="sqlite3"
    [redis]="redis-server redis-tools"
    [gcc]="gcc make libinih-dev"
)
declare -A MISSING=()
missing_of() { local m=""; for p in $1; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || m+=" $p"; done; echo "$m"; }
all_missing=""
for c in "${!PKGS[@]}"; do all_missing+=$(missing_of "${PKGS[$c]}"); done
all_missing=$(tr ' ' '\n' <<<"$all_missing" | sort -u | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
if [[ -n $all_missing ]]; then
    if [[ $(id -u) == 0 ]]; then
        echo "check-e2e: installing Debian packages: $all_missing"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $all_missing) >"$LOGS/apt.log" 2>&1 ||
            echo "check-e2e: apt-get install failed (see $LOGS/apt.log); the cases needing them are skipped"
    else
        echo "check-e2e: missing Debian packages; run: sudo apt-get install -y $all_missing"
    fi
    for c in "${!PKGS[@]}"; do MISSING[$c]=$(missing_of "${PKGS[$c]}"); done
fi

# A snapshot of the library, its plugins and the configurations (a rebuild during the run, or
# the gcc case's own build, changes nothing).
SNAP=$WORK/snapshot
mkdir -p "$SNAP/build" "$SNAP/conf"
cp "$LIB" "$SNAP/build/libhakmem.so" || exit 2
[[ -d $ROOT/build/policies ]] && cp -r "$ROOT/build/policies" "$SNAP/build/policies"
cp "$ROOT"/conf/*.ini "$SNAP/conf/" 2>/dev/null
chmod -R go-w "$SNAP"
LIB=$SNAP/build/libhakmem.so
echo "check-e2e: preloading a copy of ${HAKMEM_LIB:-build/libhakmem.so} from $SNAP"

pass=0 failn=0 skipn=0
failed=()
wanted() { [[ -z ${CHECK_FILTER:-} || $1 =~ $CHECK_FILTER ]]; }

conf_file() { [[ $1 == builtin ]] && echo "" || echo "$SNAP/conf/$1.ini"; }

describe_rc() {
    local rc=$1
    if ((rc == 124)); then echo "timed out after ${T}s"
    elif ((rc == 137)); then echo "killed (SIGKILL) after timing out"
    elif ((rc > 128)); then echo "killed by signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null))"
    else echo "exit status $rc"
    fi
}

# Each case_* function runs its programs through "${P[@]}" (a timeout, then the preload or
# nothing), works in $W, keeps its full logs in $L, and prints on stdout only what must be the
# same under glibc and under hakmem. It returns non-zero when a step failed.

PY_TESTS="test.test_dict test.test_list test.test_set test.test_unicode test.test_json test.test_re
          test.test_heapq test.test_bisect test.test_collections test.test_itertools"
case_python() {
    # shellcheck disable=SC2086
    (cd "$W" && "${P[@]}" env PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
        /usr/bin/python3 -m unittest $PY_TESTS) >"$L.python" 2>&1
    local rc=$?
    # "Ran 1583 tests in 8.4s" / "OK (skipped=13)" / "FAILED (failures=1)": the verdict, not the time.
    sed -n 's/^\(Ran [0-9]* tests\) in .*/\1/p; /^OK/p; /^FAILED/p' "$L.python"
    grep -E '^(FAIL|ERROR): ' "$L.python" | sort
    echo "status $rc"
}

case_git() {
    local g=("${P[@]}" env HOME="$W" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=check GIT_AUTHOR_EMAIL=check@example.invalid
             GIT_COMMITTER_NAME=check GIT_COMMITTER_EMAIL=check@example.invalid
             GIT_AUTHOR_DATE="2020-01-01T00:00:00Z" GIT_COMMITTER_DATE="2020-01-01T00:00:00Z"
             git -C "$W/repo" -c init.defaultBranch=main -c gc.autoDetach=false -c core.fsync=none)
    mkdir -p "$W/repo"
    "${g[@]}" init -q || return 1
    local i
    for i in $(seq 1 120); do
        mkdir -p "$W/repo/d$((i % 13))"
        seq "$i" $((i * 37)) >"$W/repo/d$((i % 13))/f$i.txt"
        [[ $((i % 3)) == 0 ]] && echo "edit $i" >>"$W/repo/d$(((i / 2) % 13))/f$((i / 2)).txt"
        "${g[@]}" add -A >/dev/null && "${g[@]}" commit -q -m "commit $i" || return 1
    done
    # 3000 more commits in one process: fast-import holds many objects at once.
    /usr/bin/python3 - >"$W/stream" <<'EOF'
for i in range(1, 3001):
    data = ("line %d\n" % i) * (i % 50 + 1)
    msg = "imported %d\n" % i
    print("commit refs/heads/imported\nmark :%d\ncommitter check <check@example.invalid> 1577836800 +0000" % i)
    print("data %d\n%s" % (len(msg), msg), end="")
    if i > 1:
        print("from :%d" % (i - 1))
    print("M 644 inline f%d.txt\ndata %d\n%s" % (i % 200, len(data), data))
EOF
    "${g[@]}" fast-import --quiet <"$W/stream" || return 1
    "${g[@]}" rev-parse HEAD imported
    "${g[@]}" log --stat --format=%H:%s main | sha256sum
    "${g[@]}" gc -q --aggressive || return 1
    "${g[@]}" fsck --strict --no-progress 2>&1 || return 1
    "${g[@]}" count-objects -v | grep -E '^(count|in-pack|packs):'
    "${g[@]}" diff --stat HEAD~100 HEAD | tail -n1
}

case_perl() {
    "${P[@]}" env PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 perl -MDigest::MD5=md5_hex -e '
        use strict; use warnings;
        my (%h, @keep);
        for my $round (1 .. 6) {
            for my $i (1 .. 60000) {
                my $k = sprintf("k%d-%s", $i * $round, "x" x ($i % 41));
                $h{$k} = join(",", map { $_ * $round } 1 .. ($i % 17)) . ("y" x ($i % 97));
            }
            for my $k (keys %h) { delete $h{$k} if length($k) % 3 == $round % 3 }
            my $s = join("|", map { "$_=$h{$_}" } (sort keys %h)[0 .. 999]);
            (my $t = $s) =~ s/(\d+)/<$1>/g;
            my @w = split /[|,=]+/, $t;
            push @keep, md5_hex($t) . ":" . scalar(@w);
            my %count; $count{length $_}++ for @w;
            push @keep, join(";", map { "$_:$count{$_}" } sort { $a <=> $b } keys %count);
        }
        my $big = ""; $big .= chr(65 + $_ % 26) x ($_ % 300) for 1 .. 20000;
        my @parts = sort { length($a) <=> length($b) || $a cmp $b } ($big =~ /(A+|Z+)/g);
        print scalar(keys %h), " keys, ", length($big), " bytes, ", scalar(@parts), " parts\n";
        print md5_hex(join("\n", @keep, @parts)), "\n";'
}

case_sqlite() {
    "${P[@]}" sqlite3 -batch -bail "$W/check.db" <<'EOF'
PRAGMA journal_mode=DELETE;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, blob BLOB);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t(name, grp, val, blob)
    SELECT printf('name-%08d-%s', x, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 1 + x % 13)),
           (x * 2654435761) % 997, (x % 1000) / 7.0, zeroblob(x % 200)
    FROM c;
COMMIT;
CREATE INDEX t_grp ON t(grp, val);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(grp), round(sum(val), 3), sum(length(blob)) FROM t;
SELECT grp, count(*), round(avg(val), 4) FROM t GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 5;
SELECT name FROM t WHERE name LIKE 'name-0005%' ORDER BY name DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.grp = b.grp AND a.id < b.id WHERE a.id < 2000 AND b.id < 2000;
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET name = upper(name), val = val * 2 WHERE grp < 100;
VACUUM;
PRAGMA integrity_check;
SELECT count(*), sum(grp), round(sum(val), 3) FROM t;
EOF
}

case_redis() {
    local port pid i
    for i in 1 2 3 4 5 6 7 8 9 10; do # a free high port on loopback
        port=$((20000 + RANDOM % 40000))
        ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    done
    "${P[@]}" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --protected-mode yes \
        --daemonize no --dir "$W" --logfile "$L.redis-server" &
    pid=$!
    for i in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    local ok=1
    if ! redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
        echo "redis-server did not answer"
        ok=0
    else
        timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 20 -q \
            -t ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset >"$L.redis-benchmark" 2>&1
        local brc=$?
        local tests errors
        tests=$(grep -c 'requests per second' "$L.redis-benchmark")
        errors=$(grep -ciE 'error|err ' "$L.redis-benchmark")
        echo "benchmark: status $brc, $tests tests, $errors errors"
        # A deterministic workload whose answers must match glibc's.
        awk 'BEGIN {
            for (i = 1; i <= 5000; i++) { v = ""; for (k = 0; k < i % 300; k++) v = v "x"; print "SET key:" i " value-" i "-" v }
            for (i = 1; i <= 2000; i++) { print "RPUSH list item-" i; print "HSET hash f" i " " i * i; print "SADD set m" i % 700 }
            print "DEL key:1 key:2 key:3" }' | redis-cli -h 127.0.0.1 -p "$port" --pipe >"$L.redis-pipe" 2>&1
        grep -o 'errors: [0-9]*, replies: [0-9]*' "$L.redis-pipe"
        for cmd in "EXISTS key:1" "STRLEN key:4999" "GET key:77" "LLEN list" "LINDEX list 1234" "HGET hash f1999" \
                   "HLEN hash" "SCARD set" "APPEND key:10 tail" "GETRANGE key:10 -8 -1"; do
            echo "$cmd => $(redis-cli -h 127.0.0.1 -p "$port" $cmd 2>&1)"
        done
        redis-cli -h 127.0.0.1 -p "$port" flushall >/dev/null
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1
    fi
    for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    kill $pid 2>/dev/null
    wait $pid
    local rc=$?
    echo "redis-server status $rc"
    grep -qiE 'crashed|assertion|Guru Meditation' "$L.redis-server" && echo "redis-server log reports a crash"
    ((ok))
}

case_gcc() {
    # hakmem's own library, built from a copy of the sources by a gcc (and make) running under the
    # preload; the objects must be the same as glibc's build gives.
    mkdir -p "$W/src"
    cp -r "$ROOT/Makefile" "$ROOT/core" "$ROOT/include" "$ROOT/policies" "$ROOT/tools" "$W/src/"
    mkdir -p "$W/src/build"
    touch "$W/src/build/.deps" # packages checked already
    (cd "$W/src" && "${P[@]}" make -s -j2 lib CC=gcc) >"$L.gcc" 2>&1 || { cat "$L.gcc"; return 1; }
    (cd "$W/src/build/core" && sha256sum ./*.o)
}

# case NAME CONF: runs case_NAME under glibc (once, the reference) and under hakmem with CONF.
run_case() {
    local test=$1 conf=$2 name="$1[$2]"
    wanted "$name" || return 0
    if [[ -n ${MISSING[$test]:-} ]]; then
        skipn=$((skipn + 1)); echo "SKIP $name (missing Debian packages:${MISSING[$test]})"; return 0
    fi
    local ref=$LOGS/$test.glibc
    if [[ ! -f $ref.rc ]]; then
        P=(timeout -k 5 "$T")
        W=$WORK/$test L=$ref
        rm -rf "$W"; mkdir -p "$W"
        "case_$test" >"$ref.out" 2>"$ref.err"
        echo $? >"$ref.rc"
    fi
    local rc_ref rc
    rc_ref=$(cat "$ref.rc")
    local t0=$SECONDS
    P=(timeout -k 5 "$T" env LD_PRELOAD="$LIB" HAKMEM_CONF="$(conf_file "$conf")")
    W=$WORK/$test L=$LOGS/$test.$conf # the same folder every time: paths end up in outputs (gcc -g)
    rm -rf "$W"; mkdir -p "$W"
    "case_$test" >"$L.out" 2>"$L.err"
    rc=$?
    if ((rc_ref != 0)); then
        failn=$((failn + 1)); failed+=("$name")
        echo "FAIL $name (fails under glibc too, $(describe_rc "$rc_ref"): $(head -n1 "$ref.out" "$ref.err" 2>/dev/null | grep -v '^==>' | grep -m1 . | cut -c1-200))"
    elif ((rc != 0)); then
        failn=$((failn + 1)); failed+=("$name")
        echo "FAIL $name ($(describe_rc $rc) under hakmem: $(grep -m1 . "$L.err" "$L.out" | cut -c1-200))"
    elif ! cmp -s "$ref.out" "$L.out"; then
        failn=$((failn + 1)); failed+=("$name")
        echo "FAIL $name (results differ from glibc's: $(diff "$ref.out" "$L.out" | grep -m1 '^[<>]' | cut -c1-200))"
    elif ! cmp -s "$ref.err" "$L.err"; then
        failn=$((failn + 1)); failed+=("$name")
        echo "FAIL $name (stderr differs from glibc's: $(diff "$ref.err" "$L.err" | grep -m1 '^[<>]' | cut -c1-200))"
    else
        pass=$((pass + 1))
        echo "PASS $name ($(grep -m1 . "$L.out" | cut -c1-90)) [$((SECONDS - t0)) s]"
        [[ ${CHECK_KEEP:-} == 1 ]] && cp -r "$W" "$W.$conf.kept"
        return 0
    fi
    mv "$W" "$W.$conf.failed" 2>/dev/null
    echo "    logs: $LOGS/$test.$conf.* (reference: $ref.*), work folder $W.$conf.failed; rerun: CHECK_FILTER='^$test\\[$conf\\]' CHECK_KEEP=1 $0"
}

ALL="builtin $(for f in "$SNAP"/conf/*.ini; do [[ -f $f ]] && basename "$f" .ini; done | tr '\n' ' ')"
# shellcheck source=tests/pressure-source.sh
. "$ROOT/tests/pressure-source.sh"
if [[ " $ALL " == *" trim-pressure "* ]] && ! pressure_source_here; then
    ALL=${ALL/ trim-pressure / }
    skipn=$((skipn + 1))
    echo "SKIP *[trim-pressure] (this machine has neither PSI nor cgroup memory files: trim pressure says so in one line at start-up, and stderr must match glibc's)"
fi
CONFS=${CHECK_CONFS:-$ALL}
for test in python git perl sqlite redis gcc; do
    for c in $CONFS; do run_case "$test" "$c"; done
done

echo "check-e2e: $(($(date +%s) - START)) s"
if ((failn > 0)); then
    echo "failed: ${failed[*]} (work folder and logs kept in $WORK)"
elif [[ ${CHECK_KEEP:-} != 1 ]]; then
    rm -rf "$WORK"
fi
echo "$pass passed, $failn failed, $skipn skipped"
((failn == 0))

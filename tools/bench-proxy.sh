#!/usr/bin/env bash
# tools/bench-proxy.sh - requests per second through lbkit-proxy and through
# HAProxy (TCP mode, one thread) in front of the same backends, in one run.
#
#   tools/bench-proxy.sh BUILD_DIR
#
# Starts BACKENDS nginx processes on free 127.0.0.1 ports (one process each,
# one small static file), two lbkit-proxy processes (round_robin and
# least_conn) and two HAProxy processes (mode tcp, nbthread 1, balance
# roundrobin and leastconn) over those backends, checks that each one
# forwards, then drives each with wrk: a keep-alive run and a run that opens
# a new connection per request ("Connection: close").  Prints one table per
# round and a summary (median over rounds): req/s, latency p50/p99 from
# wrk --latency, errors, the proxy's own CPU time per request (user+system
# from /proc, the number least disturbed by other load on a shared machine),
# the 1-minute load average, and the ratios lbkit/haproxy.
#
# Not a test: nothing here asserts a timing.  Everything it starts is stopped
# on exit (trap); loopback only; each wrk run is bounded by `timeout`.
#
# Environment knobs (defaults in brackets):
#   BACKENDS [3]  DURATION [10s]  CONNS [32]  THREADS [1]  ROUNDS [1]
#   MODES ["keepalive close"]  DIRECT [0] (1: also wrk one backend alone)
#   NO_INSTALL [unset] (fail instead of apt-get installing missing tools)
set -euo pipefail

BUILD_DIR=${1:-}
if [[ -z "$BUILD_DIR" || ! -x "$BUILD_DIR/examples/lbkit-proxy" ]]; then
    echo "usage: $0 BUILD_DIR  (BUILD_DIR/examples/lbkit-proxy must exist;" \
        "build it with: ninja -C BUILD_DIR examples/lbkit-proxy)" >&2
    exit 2
fi
PROXY=$(cd "$BUILD_DIR/examples" && pwd)/lbkit-proxy
BACKENDS=${BACKENDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-1}
MODES=${MODES:-"keepalive close"}
DIRECT=${DIRECT:-0}

die() { echo "bench-proxy: $*" >&2; exit 1; }
[[ "$BACKENDS" =~ ^[1-9][0-9]?$ ]] || die "BACKENDS must be 1..99"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$DURATION" =~ ^[1-9][0-9]*s$ ]] || die "DURATION must look like 10s"
DUR_S=${DURATION%s}

# ---- tools: install what is missing (Debian packages) ----------------------
export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    [[ -z "${NO_INSTALL:-}" && $(id -u) -eq 0 ]] ||
        die "missing: ${need[*]} (apt-get install ${need[*]})"
    echo "bench-proxy: installing ${need[*]}" >&2
    # policy-rc.d or not, the packaged services are not wanted: we start
    # our own instances with generated configs.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 ||
        { apt-get update -q >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2; }
fi

# ---- cleanup: stop exactly what we started ---------------------------------
TMP=$(mktemp -d /tmp/bench-proxy.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # bounded wait, then force
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: 0 once PORT accepts, 1 if PID exited first (a port
# that free_port saw free can be taken by another program's connection in
# between: the callers then try another port)
wait_port() {
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || { wait "$2" 2>/dev/null || true; return 1; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "port $1 never opened"
}

# start_server LOG CMD... (CMD contains the literal word @PORT@): start CMD on
# a free port, up to 3 tries; sets STARTED_PID and STARTED_PORT
start_server() {
    local log=$1 port
    shift
    for _ in 1 2 3; do
        port=$(free_port)
        "${@//@PORT@/$port}" >"$log" 2>&1 &
        STARTED_PID=$!
        STARTED_PORT=$port
        PIDS+=("$STARTED_PID") # at once: a signal may come while we wait
        if wait_port "$port" "$STARTED_PID"; then
            return 0
        fi
    done
    cat "$log" >&2
    die "could not start: $*"
}

# ---- backends: nginx, one process per backend ------------------------------
BPORTS=()
for i in $(seq "$BACKENDS"); do
    d="$TMP/nginx$i"
    mkdir -p "$d/www" "$d/tmp"
    # the same size from every backend, naming itself, 100 bytes
    printf 'backend %-90s\n' "$i" >"$d/www/index.html"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $d/tmp;
    proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp;
    uwsgi_temp_path $d/tmp;
    scgi_temp_path $d/tmp;
    server {
        listen 127.0.0.1:__PORT__;
        root $d/www;
    }
}
EOF
    # the port goes into the config file, so the config is written per try
    start_server "$d/stderr.log" sh -c "sed 's/__PORT__/'\$1'/' '$d/nginx.conf' \
        >'$d/nginx-port.conf' && exec nginx -p '$d' -e '$d/error.log' \
        -c '$d/nginx-port.conf'" sh @PORT@
    BPORTS+=("$STARTED_PORT")
done

: >"$TMP/backends.txt"
for port in "${BPORTS[@]}"; do
    echo "127.0.0.1:$port 1" >>"$TMP/backends.txt"
done

# ---- the proxies -----------------------------------------------------------
declare -A PORT_OF PID_OF
NAMES=()

start_lbkit() { # NAME POLICY
    start_server "$TMP/$1.log" "$PROXY" --listen "127.0.0.1:@PORT@" \
        --backends "$TMP/backends.txt" --policy "$2" --quiet
    PID_OF[$1]=$STARTED_PID
    PORT_OF[$1]=$STARTED_PORT
    NAMES+=("$1")
}

start_haproxy() { # NAME BALANCE
    local cfg i=0
    cfg="$TMP/$1.cfg"
    {
        echo "global"
        echo "    nbthread 1"
        echo "    maxconn 4096"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 5s"
        echo "    timeout client 60s"
        echo "    timeout server 60s"
        echo "frontend fe"
        echo "    bind 127.0.0.1:__PORT__"
        echo "    default_backend be"
        echo "backend be"
        echo "    balance $2"
        for p in "${BPORTS[@]}"; do
            i=$((i + 1))
            echo "    server s$i 127.0.0.1:$p"
        done
    } >"$cfg"
    start_server "$TMP/$1.log" sh -c "sed 's/__PORT__/'\$1'/' '$cfg' \
        >'$cfg.port' && exec haproxy -db -f '$cfg.port'" sh @PORT@
    PID_OF[$1]=$STARTED_PID
    PORT_OF[$1]=$STARTED_PORT
    NAMES+=("$1")
}

if [[ "$DIRECT" == 1 ]]; then
    PORT_OF[direct]=${BPORTS[0]}
    PID_OF[direct]=
    NAMES+=(direct)
fi
start_lbkit lbkit-rr round_robin
start_haproxy haproxy-rr roundrobin
start_lbkit lbkit-lc least_conn
start_haproxy haproxy-lc leastconn

# ---- forwarding check: every proxy answers and reaches every backend -------
for name in "${NAMES[@]}"; do
    [[ "$name" == direct ]] && continue
    seen=""
    for _ in $(seq $((BACKENDS * 3))); do
        body=$(curl -sS --max-time 5 "http://127.0.0.1:${PORT_OF[$name]}/") ||
            die "$name: request failed"
        seen+="$(echo "$body" | awk '{print $2}') "
    done
    distinct=$(tr ' ' '\n' <<<"$seen" | sed '/^$/d' | sort -u | wc -l)
    # least_conn with one client at a time may legitimately reuse a backend;
    # round robin must reach all of them
    if [[ "$name" == *-rr && "$distinct" -ne "$BACKENDS" ]]; then
        die "$name reached $distinct of $BACKENDS backends: $seen"
    fi
done

# ---- measuring -------------------------------------------------------------
cpu_ticks() { # PID -> utime+stime in clock ticks
    [[ -n "$1" ]] || { echo 0; return; }
    awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"
}
TCK=$(getconf CLK_TCK)

# to_ms VALUE_WITH_UNIT (wrk prints us, ms or s)
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000
        else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

RESULTS="$TMP/results.tsv" # round mode name rps p50 p99 errors cpu_us load
: >"$RESULTS"

run_one() { # ROUND MODE NAME
    local round=$1 mode=$2 name=$3 out="$TMP/wrk.out" hdr=() t0 t1
    [[ "$mode" == close ]] && hdr=(-H "Connection: close")
    t0=$(cpu_ticks "${PID_OF[$name]}")
    timeout $((DUR_S + 30)) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" \
        --timeout 5s --latency "${hdr[@]}" \
        "http://127.0.0.1:${PORT_OF[$name]}/" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed on $name"; }
    t1=$(cpu_ticks "${PID_OF[$name]}")
    local rps reqs p50 p99 errs cpu load
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    reqs=$(awk '/requests in/ {print $1}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    errs=$(awk '/Socket errors:/ {gsub(/,/, ""); s += $4 + $6 + $8 + $10}
                /Non-2xx/ {s += $NF} END {print s + 0}' "$out")
    if [[ -n "${PID_OF[$name]}" && "${reqs:-0}" -gt 0 ]]; then
        cpu=$(awk -v d=$((t1 - t0)) -v t="$TCK" -v r="$reqs" \
            'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    else
        cpu="-"
    fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    [[ -n "$rps" ]] || { cat "$out" >&2; die "no result from wrk on $name"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$name" \
        "$rps" "$p50" "$p99" "$errs" "$cpu" "$load" >>"$RESULTS"
    printf '%-9s %-11s %10.0f %9s %9s %7s %9s %6s\n' "$mode" "$name" "$rps" \
        "$p50" "$p99" "$errs" "$cpu" "$load"
}

header() {
    printf '%-9s %-11s %10s %9s %9s %7s %9s %6s\n' mode target req/s \
        p50_ms p99_ms errors cpu_us/req load1
}

echo "# lbkit-proxy vs HAProxy $(haproxy -v | awk 'NR==1 {print $3}'), wrk" \
    "-t$THREADS -c$CONNS -d$DURATION, $BACKENDS nginx backends, $(date -u +%FT%TZ)"
echo "# $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
    "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    # alternate the order between rounds so slow drifts in the machine's
    # load do not always favour the same target
    order=("${NAMES[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((k = ${#NAMES[@]} - 1; k >= 0; k--)); do order+=("${NAMES[k]}"); done
    fi
    echo
    echo "round $round"
    header
    for mode in $MODES; do
        for name in "${order[@]}"; do
            run_one "$round" "$mode" "$name"
        done
    done
done

# ---- summary: medians over rounds, ratios lbkit/haproxy --------------------
echo
echo "summary (median of $ROUNDS round(s); min-max req/s in brackets)"
python3 - "$RESULTS" "$MODES" "${NAMES[*]}" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
modes, names = sys.argv[2].split(), sys.argv[3].split()
med = {}
print("%-9s %-11s %10s %17s %8s %8s %7s %10s" % ("mode", "target", "req/s",
      "[min-max]", "p50_ms", "p99_ms", "errors", "cpu_us/req"))
for m in modes:
    for n in names:
        r = [x for x in rows if x[1] == m and x[2] == n]
        if not r:
            continue
        rps = [float(x[3]) for x in r]
        cpu = [float(x[7]) for x in r if x[7] != "-"]
        med[m, n] = (statistics.median(rps),
                     statistics.median(cpu) if cpu else None)
        print("%-9s %-11s %10.0f %17s %8.3f %8.3f %7d %10s" % (m, n,
              med[m, n][0], "[%.0f-%.0f]" % (min(rps), max(rps)),
              statistics.median(float(x[4]) for x in r),
              statistics.median(float(x[5]) for x in r),
              sum(int(x[6]) for x in r),
              "%.2f" % med[m, n][1] if cpu else "-"))
print()
for m in modes:
    for pol in ("rr", "lc"):
        a, b = med.get((m, "lbkit-" + pol)), med.get((m, "haproxy-" + pol))
        if not a or not b:
            continue
        line = "ratio %-9s %s  lbkit/haproxy req/s = %.2f" % (m, pol, a[0] / b[0])
        if a[1] and b[1]:
            line += ", cpu/req = %.2f" % (a[1] / b[1])
        print(line)
EOF
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

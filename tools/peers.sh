#!/usr/bin/env bash
# Install the real peers the test suite and benchmarks talk to, only when missing.
#
# `make test` and `make bench` run this before anything else, so a fresh machine (and CI) gets
# the same peers a developer has: Debian packages (a browser, a reverse proxy, a metrics server)
# and npm packages (a WebSocket implementation nobody here wrote). Python peers come from
# pyproject's extras instead. Each section names the tests that need it; a peer that cannot be
# installed here is reported on one line and the tests that need it skip with that reason
# (or fail under CI=true, where every peer must be present).
set -uo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
want_deb() { # want_deb BINARY PACKAGE: install PACKAGE unless BINARY is on PATH
    command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2")
}

# --- Debian packages ---------------------------------------------------------------------------
want_deb chromium chromium          # report and HAR tests open pages in headless Chromium
want_deb curl curl                  # tests/record/test_passthrough_peers.py: curl through the recorder
want_deb prometheus prometheus      # live-metrics tests: a real Prometheus scrapes the recorder (promtool checks the rules)
want_deb nginx nginx-light          # bench/bench_record.py: the reverse proxy the recorder is measured against

if ((${#apt_missing[@]})); then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "peers: installing ${apt_missing[*]} (Debian)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"; } >/tmp/wsreplay-peers-apt.log 2>&1 ||
            echo "peers: could not install ${apt_missing[*]} (see /tmp/wsreplay-peers-apt.log); the tests that need them will say so"
    else
        echo "peers: missing ${apt_missing[*]} and cannot apt-get here (not root); the tests that need them will say so"
    fi
fi

# --- npm packages (into tests/peers/node_modules, not tracked) ---------------------------------
npm_missing=()
want_npm() { # want_npm PACKAGE
    [ -d "tests/peers/node_modules/$1" ] || npm_missing+=("$1")
}
want_npm ws                         # tests/record/test_passthrough_peers.py: Node's ws client through the recorder

if ((${#npm_missing[@]})); then
    if command -v npm >/dev/null 2>&1; then
        echo "peers: installing ${npm_missing[*]} (npm)"
        mkdir -p tests/peers
        npm install --silent --no-audit --no-fund --prefix tests/peers "${npm_missing[@]}" >/tmp/wsreplay-peers-npm.log 2>&1 ||
            echo "peers: could not install ${npm_missing[*]} (see /tmp/wsreplay-peers-npm.log)"
    else
        echo "peers: npm not found; the tests that need ${npm_missing[*]} will say so"
    fi
fi
exit 0

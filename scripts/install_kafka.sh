#!/usr/bin/env bash
# Install real Apache Kafka brokers (jars only) from Maven Central for the tests.
#
# Why Maven and not the release tarball: only package registries are reachable where the tests
# run, and Maven Central carries every jar the broker needs (kafka_2.13 plus its runtime closure).
# Each version lands in ${XTCP_CACHE_DIR:-$HOME/.cache/xtcp_async}/kafka-<version>/libs and is
# marked complete with a stamp file, so a second run does nothing and a killed run is redone.
#
# Usage: scripts/install_kafka.sh [VERSION...]   (default: the versions the tests use)
set -euo pipefail

# 3.9.x: the last line with ZooKeeper and the old protocol versions.
# 4.x: the newest release; KIP-896 removed old protocol versions there.
DEFAULT_VERSIONS=(3.9.2 4.4.0)
VERSIONS=("$@")
if [[ ${#VERSIONS[@]} -eq 0 ]]; then
    VERSIONS=("${DEFAULT_VERSIONS[@]}")
fi
CACHE_DIR="${XTCP_CACHE_DIR:-$HOME/.cache/xtcp_async}"

# The logging binding differs: 3.9 logs through slf4j 1.7 + reload4j (log4j 1 API), 4.x moved to
# log4j2 (still slf4j 1.7, so the log4j-slf4j-impl binding, not -slf4j2-). Without a binding the
# broker still runs but says nothing when it fails to start. log4j-api is listed explicitly so
# Maven's nearest-wins rule gives api and core the same version (a mismatch fails at start).
logging_deps() {
    case "$1" in
        3.*) cat <<'EOF'
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
EOF
        ;;
        *) cat <<'EOF'
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>2.25.5</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.5</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.5</version></dependency>
EOF
        ;;
    esac
}

install_one() {
    local version="$1"
    local dest="$CACHE_DIR/kafka-$version"
    if [[ -f "$dest/.complete" ]]; then
        echo "kafka $version: cached in $dest"
        return 0
    fi
    echo "kafka $version: fetching jars from Maven Central into $dest (first run only)"
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand $work now: it is a local
    trap "rm -rf '$work'" RETURN
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>xtcp-async.tests</groupId>
  <artifactId>kafka-broker-$version</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
$(logging_deps "$version")
  </dependencies>
</project>
EOF
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp/libs"
    # Only kafka_2.13 (core: kafka.Kafka and kafka.tools.StorageTool) and its runtime closure;
    # kafka-tools would drag in Connect, Jetty and Jersey, which a broker never loads.
    # -B: no colours/progress bars in CI logs; runtime scope: what `java -cp` needs, no test jars.
    mvn -B -q -f "$work/pom.xml" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dest.tmp/libs"
    if ! ls "$dest.tmp/libs/kafka_2.13-$version.jar" >/dev/null 2>&1; then
        echo "kafka $version: kafka_2.13-$version.jar missing after mvn" >&2
        return 1
    fi
    echo "$version" >"$dest.tmp/.complete"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    echo "kafka $version: $(ls "$dest/libs" | wc -l) jars in $dest/libs"
}

command -v java >/dev/null || { echo "install_kafka: java (17+) is required" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install_kafka: mvn is required" >&2; exit 1; }
for v in "${VERSIONS[@]}"; do
    install_one "$v"
done

#!/usr/bin/env bash
# Install nsqd and nsq_tail (the real NSQ the tests start) through the Go module proxy.
#
# Why go install rather than a release tarball: only package registries are reachable here,
# and the Go module proxy serves nsq's source; `go install pkg@version` builds it reproducibly.
# The binaries land in a per-version cache dir so a second run (and every fresh clone on the
# same machine) costs nothing: the script exits as soon as both binaries exist.
set -euo pipefail

NSQ_VERSION="${NSQ_VERSION:-v1.3.0}"
CACHE_DIR="${XTCP_CACHE_DIR:-$HOME/.cache/xtcp_async}"
BIN_DIR="$CACHE_DIR/nsq-${NSQ_VERSION#v}/bin"
APPS=(nsqd nsq_tail)

have_all() {
    local app
    for app in "${APPS[@]}"; do
        [[ -x "$BIN_DIR/$app" ]] || return 1
    done
}

if have_all; then
    echo "nsq ${NSQ_VERSION}: cached in $BIN_DIR"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "install_nsq.sh: 'go' is not on PATH; install Go >= 1.21 to build nsqd" >&2
    exit 1
fi

mkdir -p "$BIN_DIR"
# Build into a temporary GOBIN, then move: an interrupted build never leaves a half-written
# binary that the fast path above would take for a finished install.
tmp_bin="$(mktemp -d "$BIN_DIR/../.gobin.XXXXXX")"
trap 'rm -rf "$tmp_bin"' EXIT
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
pkgs=()
for app in "${APPS[@]}"; do
    pkgs+=("github.com/nsqio/nsq/apps/${app}@${NSQ_VERSION}")
done
echo "nsq ${NSQ_VERSION}: go install ${APPS[*]}"
if ! GOBIN="$tmp_bin" go install "${pkgs[@]}"; then
    # `go install pkg@version` also asks the proxy for the module's version list (to report a
    # deprecation); some mirrors refuse that listing (403) though they serve the version itself.
    # Building inside the downloaded module with its own go.mod/go.sum yields the same binaries.
    echo "nsq ${NSQ_VERSION}: go install failed; building from the downloaded module instead" >&2
    mod_dir="$(go mod download -json "github.com/nsqio/nsq@${NSQ_VERSION}" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    if [[ -z "$mod_dir" || ! -d "$mod_dir" ]]; then
        echo "install_nsq.sh: could not download github.com/nsqio/nsq@${NSQ_VERSION}" >&2
        exit 1
    fi
    for app in "${APPS[@]}"; do
        (cd "$mod_dir" && go build -mod=readonly -trimpath -o "$tmp_bin/$app" "./apps/$app")
    done
fi
for app in "${APPS[@]}"; do
    mv -f "$tmp_bin/$app" "$BIN_DIR/$app"
done
echo "nsq ${NSQ_VERSION}: installed in $BIN_DIR"
"$BIN_DIR/nsqd" --version

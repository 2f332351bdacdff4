#!/usr/bin/env bash
# Install promtool and helm (the real tools the deploy-file tests run) through the Go module proxy.
#
# Same approach as install_nsq.sh: only package registries are reachable, the Go module proxy
# serves both projects' source, and `go install pkg@version` builds them reproducibly. Each tool
# lands in a per-version cache dir, so a second run (and every fresh clone on the same machine)
# exits at once. Both builds take minutes the first time (prometheus and helm are large modules).
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"  # the Go module version of Prometheus 3.x
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE_DIR="${XTCP_CACHE_DIR:-$HOME/.cache/xtcp_async}"

# name  module  package-in-module  version
TOOLS=(
    "promtool github.com/prometheus/prometheus ./cmd/promtool $PROMETHEUS_VERSION"
    "helm helm.sh/helm/v3 ./cmd/helm $HELM_VERSION"
)

install_one() {
    local name="$1" module="$2" pkg="$3" version="$4"
    local bin_dir="$CACHE_DIR/$name-${version#v}/bin"
    if [[ -x "$bin_dir/$name" ]]; then
        echo "$name $version: cached in $bin_dir"
        return 0
    fi
    if ! command -v go >/dev/null 2>&1; then
        echo "install_tools.sh: 'go' is not on PATH; install Go >= 1.24 to build $name" >&2
        return 1
    fi
    mkdir -p "$bin_dir"
    # Build into a temporary dir, then move: an interrupted build never leaves a half-written
    # binary that the fast path above would take for a finished install.
    local tmp_bin
    tmp_bin="$(mktemp -d "$bin_dir/../.gobin.XXXXXX")"
    export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
    echo "$name $version: go install ${module}/${pkg#./}@$version"
    if ! GOBIN="$tmp_bin" go install "${module}/${pkg#./}@$version"; then
        # Some proxies refuse the version listing `go install` asks for, and a module whose go.mod
        # has replace directives cannot be `go install`ed at all: build inside the downloaded module
        # with its own go.mod/go.sum instead, which yields the same binary.
        echo "$name $version: go install failed; building from the downloaded module instead" >&2
        local mod_dir
        mod_dir="$(go mod download -json "${module}@${version}" \
            | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
        if [[ -z "$mod_dir" || ! -d "$mod_dir" ]]; then
            echo "install_tools.sh: could not download ${module}@${version}" >&2
            rm -rf "$tmp_bin"
            return 1
        fi
        (cd "$mod_dir" && go build -mod=readonly -trimpath -o "$tmp_bin/$name" "$pkg")
    fi
    mv -f "$tmp_bin/$name" "$bin_dir/$name"
    rm -rf "$tmp_bin"
    echo "$name $version: installed in $bin_dir"
    "$bin_dir/$name" --help >/dev/null 2>&1 || true
}

# systemd-analyze (verify, security) for the systemd unit's test: Debian's systemd package; only
# installed when missing and apt-get is usable (root), since it is a system package, not a Go tool.
install_systemd_analyze() {
    if command -v systemd-analyze >/dev/null 2>&1; then
        echo "systemd-analyze: $(systemd-analyze --version | head -1)"
        return 0
    fi
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "install_tools.sh: systemd-analyze missing (apt-get install systemd); its test will skip" >&2
        return 0
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
}

only="${1:-}"
for spec in "${TOOLS[@]}"; do
    # shellcheck disable=SC2086
    set -- $spec
    if [[ -z "$only" || "$only" == "$1" ]]; then
        install_one "$@"
    fi
done
if [[ -z "$only" || "$only" == "systemd-analyze" ]]; then
    install_systemd_analyze
fi

#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, the main module's
# tests under the race detector (fuzz seed corpora run as ordinary tests),
# and the interop module's tests against go-libp2p. README and .ci/run
# both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { echo "test.sh: Go 1.26 is needed (https://go.dev/dl)"; exit 1; }
export PATH="$(go env GOPATH)/bin:$PATH"

# apt_install PKG... installs Debian packages, running apt-get update
# once per run at most.
apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then
		apt-get update -qq
		apt_updated=1
	fi
	apt-get install -y -qq "$@" >/dev/null
}

# The race detector needs cgo, hence a C compiler.
if ! command -v gcc >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "== installing gcc (the race detector needs a C compiler)"
		apt_install gcc
	else
		echo "test.sh: go test -race needs a C compiler: install gcc (Debian/Ubuntu: sudo apt-get install gcc)"
		exit 1
	fi
fi
export CGO_ENABLED=1

# The namespace lab (internal/netlab) needs ip and nft, and root; without
# them its tests skip, or fail under CI=true.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	missing=()
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v nft >/dev/null 2>&1 || missing+=(nftables)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]} (the network namespace lab)"
		apt_install "${missing[@]}"
	fi
fi

STATICCHECK_VERSION=v0.8.2
if ! staticcheck -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	echo "== installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

modules=(. interop)

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
	echo "gofmt would change:"; echo "$bad"; exit 1
fi

for m in "${modules[@]}"; do
	[ -f "$m/go.mod" ] || continue
	echo "== go vet ($m)"
	(cd "$m" && go vet ./...)
	echo "== staticcheck ($m)"
	(cd "$m" && staticcheck ./...)
done

echo "== go test -race (main module)"
go test -race -shuffle=on -timeout 20m ./...

if [ -f interop/js/package.json ]; then
	echo "== npm ci (interop/js: js-libp2p for the interop tests)"
	command -v npm >/dev/null 2>&1 || { echo "test.sh: npm (with Node.js 20 or later) is needed for the js-libp2p interop tests"; exit 1; }
	npm ci --prefix interop/js --no-audit --no-fund
fi

if [ -f interop/go.mod ]; then
	echo "== go test -race (interop against go-libp2p)"
	(cd interop && go test -race -shuffle=on -timeout 20m ./...)
fi
echo "== all checks passed"

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
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
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

# The namespace lab (internal/netlab) needs ip, nft and miniupnpd, and
# root; the browser test needs chromium. Without them those tests skip,
# or fail under CI=true.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	missing=()
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v nft >/dev/null 2>&1 || missing+=(nftables)
	# miniupnpd is the lab routers' UPnP IGD / NAT-PMP daemon (the binary
	# is in miniupnpd-nftables; the miniupnpd package adds only a service).
	command -v miniupnpd >/dev/null 2>&1 || [ -x /usr/sbin/miniupnpd ] || missing+=(miniupnpd-nftables)
	# The browser test drives Debian's Chromium (interop/browser_test.go).
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]} (the namespace lab, the browser test)"
		apt_install "${missing[@]}"
	fi
fi

# The metrics tests run promtool and a real Prometheus on loopback
# (Debian's prometheus package). The package's own service must not
# start: it would listen on :9090 on every interface; and without
# recommends, no node exporter comes along to listen on :9100.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v promtool >/dev/null 2>&1; then
	echo "== installing prometheus (the metrics tests scrape with a real Prometheus on loopback)"
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
	fi
	apt_install --no-install-recommends prometheus
	if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
	if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
fi

STATICCHECK_VERSION=v0.8.2
if ! staticcheck -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	echo "== installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

modules=(. interop compat)

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
	echo "== npm ci (interop/js, interop/browser: js-libp2p for the interop and browser tests)"
	command -v npm >/dev/null 2>&1 || { echo "test.sh: npm (with Node.js 20 or later) is needed for the js-libp2p interop tests"; exit 1; }
	npm ci --prefix interop/js --no-audit --no-fund
	npm ci --prefix interop/browser --no-audit --no-fund
fi

if [ -f interop/go.mod ]; then
	echo "== go test -race (interop against go-libp2p)"
	(cd interop && go test -race -shuffle=on -timeout 20m ./...)
fi
if [ -f interop/go.mod ]; then
	echo "== versus --quick (p2pnet and go-libp2p side by side; a smoke test, no timing assertions)"
	(cd interop && go run ./cmd/versus --quick)
fi
if [ -f compat/go.mod ]; then
	echo "== go test -race (compat: gossipsub and kad-dht on p2pnet)"
	(cd compat && go test -race -shuffle=on -timeout 10m ./...)
fi
echo "== all checks passed"
